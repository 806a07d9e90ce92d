//! The Threefry-2x32 block cipher with 20 rounds (Salmon, Moraes, Dror and Shaw, "Parallel
//! random numbers: as easy as 1, 2, 3", SC 2011): the kernel of `threefry2x32`.
//!
//! A key of two 32-bit words encrypts a counter of two words; every output word depends on
//! every input bit, so consecutive counters give independent-looking words. Being a pure
//! function of (key, counter), it is reproducible bit for bit on every run, thread count and
//! backend. Words are stored in `i32` and read as `u32`.

/// The rotation distances, alternating between two sets every four rounds.
const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];

/// Threefish's key-schedule parity constant for 32-bit words.
const PARITY: u32 = 0x1BD1_1BDA;

/// Encrypts the counter `(x0, x1)` under the key `(k0, k1)`.
pub(crate) fn threefry2x32(k0: u32, k1: u32, x0: u32, x1: u32) -> (u32, u32) {
    let ks = [k0, k1, k0 ^ k1 ^ PARITY];
    let (mut a, mut b) = (x0.wrapping_add(ks[0]), x1.wrapping_add(ks[1]));
    for group in 0..5 {
        for r in ROTATIONS[group % 2] {
            a = a.wrapping_add(b);
            b = b.rotate_left(r) ^ a;
        }
        // the key injection after every four rounds, with the group number
        a = a.wrapping_add(ks[(group + 1) % 3]);
        b = b
            .wrapping_add(ks[(group + 2) % 3])
            .wrapping_add(group as u32 + 1);
    }
    (a, b)
}

/// `threefry2x32` on whole buffers of pairs: `keys[2i..2i+2]` encrypts `counters[2i..2i+2]`.
pub(super) fn threefry_pairs(keys: &[i32], counters: &[i32]) -> Vec<i32> {
    let mut out = Vec::with_capacity(counters.len());
    for (k, x) in keys.chunks_exact(2).zip(counters.chunks_exact(2)) {
        let (a, b) = threefry2x32(k[0] as u32, k[1] as u32, x[0] as u32, x[1] as u32);
        out.push(a as i32);
        out.push(b as i32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::threefry2x32;

    /// Random123's known answers for Threefry-2x32-20.
    #[test]
    fn known_answers() {
        assert_eq!(threefry2x32(0, 0, 0, 0), (0x6b20_0159, 0x99ba_4efe));
        let m = u32::MAX;
        assert_eq!(threefry2x32(m, m, m, m), (0x1cb9_96fc, 0xbb00_2be7));
        assert_eq!(
            threefry2x32(0x1319_8a2e, 0x0370_7344, 0x243f_6a88, 0x85a3_08d3),
            (0xc492_3a9c, 0x483d_f7a0)
        );
    }
}
