//! `#[derive(Tree)]`: the user's structs and enums as trees of tensors (JAX's registered
//! pytree nodes).
//!
//! A procedural-macro crate beside `ferrax`, re-exported there as `ferrax::Tree` (the derive
//! macro and the trait share the name but live in different namespaces, as serde's do). It
//! generates an `impl ::ferrax::Tree` whose `flatten_into` visits the fields in declaration
//! order and whose `unflatten_from` rebuilds the value from them, so that a model's
//! parameters can be the argument of `grad`, `jit`, `vmap` and the rest as they are.
//!
//! What it accepts and what it generates:
//!
//! * structs with named fields, tuple structs and unit structs: a node whose kind is the
//!   type's name (`"Mlp"`), with one child per field;
//! * enums whose variants are unit, tuple or named: a node whose kind is `"Type::Variant"`,
//!   with one child per field of that variant; unflattening picks the variant by the kind;
//! * a field marked `#[tree(static)]` is no child: it is structure, not data. All the static
//!   fields of a struct or variant are stored together, as one tuple of their clones, in a
//!   `TreeDef::Static` node (a `TreeDef::Node` when there are none), so two values that differ
//!   only in a static field have different structures (and `jit` traces each once).
//!   A static field's type must be `Clone + Debug + Send + Sync + 'static`: it is compared
//!   and hashed through its `Debug` text (see `ferrax::StaticData`);
//! * generics and the where clause are kept; every type parameter that appears in a
//!   non-static field gets a `::ferrax::Tree` bound, and every static field type that names
//!   a type or lifetime parameter gets the bounds above (so a `&'a str` static field makes
//!   the impl hold for `'a: 'static` only).
//!
//! Unflattening checks the node's kind and its number of children, and reports a mismatch
//! as a `ferrax::Error::Tree` naming the type. Unions and unknown `#[tree(...)]` options are
//! compile errors naming the problem. The generated code names ferrax only through
//! `::ferrax::...` paths.
//!
//! ```ignore
//! use ferrax::{Tensor, Tree};
//!
//! #[derive(Tree)]
//! struct Layer {
//!     w: Tensor,
//!     b: Tensor,
//! }
//!
//! #[derive(Tree)]
//! struct Mlp {
//!     layers: Vec<Layer>,
//!     #[tree(static)]
//!     activation: String,
//! }
//!
//! let g: Mlp = ferrax::grad(|p: Mlp| loss(&p), &params)?;
//! ```
//!
//! (`crates/ferrax/tests/derive.rs` runs this and the other forms.)

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Attribute, Data, DeriveInput, Fields, Ident, Index, LitStr, Member, Type,
};

/// Derives `ferrax::Tree`; see the crate documentation for what it generates.
#[proc_macro_derive(Tree, attributes(tree))]
pub fn derive_tree(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// One field of a struct or variant.
struct Field {
    member: Member,
    ty: Type,
    is_static: bool,
    /// The local it is bound to in the generated code.
    binding: Ident,
}

/// A struct, or one variant of an enum: what one node of the tree holds.
struct Shape {
    /// The node's kind: `"Type"` or `"Type::Variant"`.
    kind: LitStr,
    /// `Self` or `Self::Variant`, to match and to build it.
    path: TokenStream2,
    fields: Vec<Field>,
}

/// Collects errors so that one expansion reports them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let mut errors = Errors::default();
    reject_tree_attrs(&input.attrs, "a type", &mut errors);
    let name = &input.ident;
    // the kinds name the type as written, without a raw identifier's `r#`
    let type_name = name.unraw().to_string();
    let shapes: Vec<Shape> = match &input.data {
        Data::Struct(s) => vec![Shape {
            kind: LitStr::new(&type_name, name.span()),
            path: quote!(Self),
            fields: fields(&s.fields, &mut errors),
        }],
        Data::Enum(e) => e
            .variants
            .iter()
            .map(|v| {
                reject_tree_attrs(&v.attrs, "an enum variant", &mut errors);
                let ident = &v.ident;
                Shape {
                    kind: LitStr::new(&format!("{type_name}::{}", ident.unraw()), ident.span()),
                    path: quote!(Self::#ident),
                    fields: fields(&v.fields, &mut errors),
                }
            })
            .collect(),
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span(),
                "#[derive(Tree)] does not support unions: a tree must know which field holds \
                 its leaves (use a struct or an enum)",
            ));
            Vec::new()
        }
    };
    errors.finish()?;

    let is_enum = matches!(input.data, Data::Enum(_));
    let flatten = flatten_body(&shapes, is_enum);
    let unflatten = unflatten_body(&shapes, is_enum, &type_name);

    let mut generics = input.generics.clone();
    let bounds = bounds(&input.generics, &shapes);
    if !bounds.is_empty() {
        let where_clause = generics.make_where_clause();
        for b in bounds {
            where_clause.predicates.push(syn::parse2(b)?);
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::ferrax::Tree for #name #ty_generics #where_clause {
            fn flatten_into(
                &self,
                __ferrax_leaves: &mut ::std::vec::Vec<::ferrax::Tensor>,
            ) -> ::ferrax::TreeDef {
                #flatten
            }

            fn unflatten_from(
                __ferrax_def: &::ferrax::TreeDef,
                __ferrax_leaves: &mut dyn ::std::iter::Iterator<Item = ::ferrax::Tensor>,
            ) -> ::ferrax::Result<Self> {
                #unflatten
            }
        }
    })
}

/// An error for every `#[tree(...)]` where only fields may carry one.
fn reject_tree_attrs(attrs: &[Attribute], on: &str, errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("tree")) {
        errors.push(syn::Error::new_spanned(
            attr,
            format!("#[tree(...)] is not supported on {on}: it goes on fields (#[tree(static)])"),
        ));
    }
}

/// The fields in declaration order, with their `#[tree(...)]` options read.
fn fields(fields: &Fields, errors: &mut Errors) -> Vec<Field> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| Field {
            member: match &f.ident {
                Some(ident) => Member::Named(ident.clone()),
                None => Member::Unnamed(Index {
                    index: i as u32,
                    span: f.ty.span(),
                }),
            },
            ty: f.ty.clone(),
            is_static: is_static(&f.attrs, errors),
            binding: format_ident!("__ferrax_f{}", i),
        })
        .collect()
}

/// Whether a field's attributes say `#[tree(static)]`; unknown options are errors.
fn is_static(attrs: &[Attribute], errors: &mut Errors) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("tree")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("static") {
                if found {
                    return Err(meta.error("duplicate #[tree(static)]"));
                }
                if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    return Err(meta.error("`static` takes no value: write #[tree(static)]"));
                }
                found = true;
                Ok(())
            } else {
                let path = &meta.path;
                let name = quote!(#path).to_string().replace(' ', "");
                Err(meta.error(format!(
                    "unknown #[tree(...)] option `{name}`: the only option is `static`"
                )))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    found
}

/// `Self::Variant { a: __ferrax_f0, 0: __ferrax_f1, .. }`: the braced form serves named,
/// tuple and unit shapes alike.
fn pattern(shape: &Shape) -> TokenStream2 {
    let path = &shape.path;
    let members = shape.fields.iter().map(|f| &f.member);
    let bindings = shape.fields.iter().map(|f| &f.binding);
    quote!(#path { #(#members: #bindings),* })
}

/// The node of one shape, its fields bound by [`pattern`].
fn flatten_shape(shape: &Shape) -> TokenStream2 {
    let kind = &shape.kind;
    let children = shape.fields.iter().filter(|f| !f.is_static).map(|f| {
        let (ty, b) = (&f.ty, &f.binding);
        quote_spanned!(at(ty)=> <#ty as ::ferrax::Tree>::flatten_into(#b, __ferrax_leaves))
    });
    let children = quote!(::std::vec![#(#children),*]);
    let statics: Vec<&Field> = shape.fields.iter().filter(|f| f.is_static).collect();
    if statics.is_empty() {
        return quote!(::ferrax::TreeDef::Node { kind: #kind, children: #children });
    }
    // The bounds are checked per field, so that an error points at the field's type.
    let clones = statics.iter().map(|f| {
        let (ty, b) = (&f.ty, &f.binding);
        quote_spanned!(at(ty)=> __ferrax_static_field::<#ty>(#b))
    });
    quote! {{
        fn __ferrax_static_field<
            S: ::std::clone::Clone
                + ::std::fmt::Debug
                + ::std::marker::Send
                + ::std::marker::Sync
                + 'static,
        >(
            s: &S,
        ) -> S {
            ::std::clone::Clone::clone(s)
        }
        ::ferrax::TreeDef::Static {
            kind: #kind,
            data: ::ferrax::StaticData::new((#(#clones,)*)),
            children: #children,
        }
    }}
}

fn flatten_body(shapes: &[Shape], is_enum: bool) -> TokenStream2 {
    if !is_enum {
        let pat = pattern(&shapes[0]);
        let node = flatten_shape(&shapes[0]);
        return quote! {
            let #pat = self;
            #node
        };
    }
    if shapes.is_empty() {
        return quote!(match *self {});
    }
    let arms = shapes.iter().map(|s| {
        let pat = pattern(s);
        let node = flatten_shape(s);
        quote!(#pat => #node,)
    });
    quote!(match self { #(#arms)* })
}

/// `Err(ferrax::Error::Tree { .. })` from the generated code.
fn tree_error(msg: TokenStream2) -> TokenStream2 {
    quote! {
        ::std::result::Result::Err(::ferrax::Error::Tree {
            op: ::std::string::String::from("unflatten"),
            msg: #msg,
            loc: ::std::option::Option::None,
        })
    }
}

/// Rebuilds one shape from `__ferrax_def`, checking its kind and number of children.
fn unflatten_shape(shape: &Shape) -> TokenStream2 {
    let kind = &shape.kind;
    let path = &shape.path;
    let n = shape.fields.iter().filter(|f| !f.is_static).count();
    let mismatch = tree_error(quote! {
        ::std::format!(
            "expected a {} of {} children, found {} in {:?}",
            #kind,
            #n,
            __ferrax_children.len(),
            __ferrax_def
        )
    });
    let statics: Vec<&Field> = shape.fields.iter().filter(|f| f.is_static).collect();
    let read_statics = if statics.is_empty() {
        quote!()
    } else {
        let bindings = statics.iter().map(|f| &f.binding);
        let tys = statics.iter().map(|f| &f.ty);
        quote! {
            let (#(#bindings,)*) =
                ::ferrax::TreeDef::static_data::<(#(#tys,)*)>(__ferrax_def, #kind)?;
        }
    };
    let mut child = 0usize;
    let values = shape.fields.iter().map(|f| {
        let (member, ty, b) = (&f.member, &f.ty, &f.binding);
        if f.is_static {
            quote!(#member: #b)
        } else {
            let i = Index::from(child);
            child += 1;
            quote_spanned! {at(ty)=>
                #member: <#ty as ::ferrax::Tree>::unflatten_from(
                    &__ferrax_children[#i],
                    __ferrax_leaves,
                )?
            }
        }
    });
    // Struct-expression fields are evaluated in the order written: declaration order, the
    // order `flatten_into` pushed the leaves in.
    let values: Vec<TokenStream2> = values.collect();
    quote! {
        let __ferrax_children = ::ferrax::TreeDef::children_of(__ferrax_def, #kind)?;
        if __ferrax_children.len() != #n {
            return #mismatch;
        }
        #read_statics
        ::std::result::Result::Ok(#path { #(#values),* })
    }
}

fn unflatten_body(shapes: &[Shape], is_enum: bool, name: &str) -> TokenStream2 {
    if !is_enum {
        return unflatten_shape(&shapes[0]);
    }
    let arms = shapes.iter().map(|s| {
        let kind = &s.kind;
        let body = unflatten_shape(s);
        quote!(#kind => { #body })
    });
    let no_variant = tree_error(quote! {
        ::std::format!("expected a variant of {}, found {:?}", #name, __ferrax_def)
    });
    quote! {
        let __ferrax_kind: &str = match __ferrax_def {
            ::ferrax::TreeDef::Node { kind, .. } | ::ferrax::TreeDef::Static { kind, .. } => kind,
            ::ferrax::TreeDef::Leaf => "",
        };
        match __ferrax_kind {
            #(#arms)*
            _ => #no_variant,
        }
    }
}

/// The where-clause predicates to add: `P: ::ferrax::Tree` for each type parameter `P` named
/// by a non-static field, and the static-data bounds for each static field type that names a
/// type or lifetime parameter (a concrete type is checked where its data is stored).
fn bounds(generics: &syn::Generics, shapes: &[Shape]) -> Vec<TokenStream2> {
    let types: Vec<&Ident> = generics.type_params().map(|p| &p.ident).collect();
    let params: Vec<&Ident> = types
        .iter()
        .copied()
        .chain(generics.lifetimes().map(|l| &l.lifetime.ident))
        .collect();
    let all = || shapes.iter().flat_map(|s| &s.fields);
    let mut out = Vec::new();
    for p in &types {
        if all().any(|f| !f.is_static && mentions(&f.ty, p)) {
            out.push(quote!(#p: ::ferrax::Tree));
        }
    }
    let mut seen: Vec<String> = Vec::new();
    for f in all().filter(|f| f.is_static) {
        let ty = &f.ty;
        let text = quote!(#ty).to_string();
        if params.iter().any(|p| mentions(ty, p)) && !seen.contains(&text) {
            seen.push(text);
            out.push(quote_spanned! {at(ty)=>
                #ty: ::std::clone::Clone
                    + ::std::fmt::Debug
                    + ::std::marker::Send
                    + ::std::marker::Sync
                    + 'static
            });
        }
    }
    out
}

/// A span that points at a field's type in error messages but resolves names where the
/// derive was invoked (the generated locals are not the field's macro's, if it has one).
fn at(ty: &Type) -> Span {
    Span::call_site().located_at(ty.span())
}

/// Whether a type's tokens name `ident` anywhere (a superset of its uses as a type or
/// lifetime parameter: an extra bound is harmless, a missing one is a confusing error).
fn mentions(ty: &Type, ident: &Ident) -> bool {
    fn walk(tokens: TokenStream2, ident: &Ident) -> bool {
        tokens.into_iter().any(|t| match t {
            TokenTree::Ident(i) => i == *ident,
            TokenTree::Group(g) => walk(g.stream(), ident),
            _ => false,
        })
    }
    walk(quote!(#ty), ident)
}
