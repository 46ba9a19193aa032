//! What both attributes do to a function: check that it is one they can
//! wrap, and split it into the wrapper they generate and the user's
//! function, kept whole inside it.
//!
//! The wrapper takes each argument under a generated name and calls the
//! user's function, nested in its body under its own name, with exactly
//! its own arguments. The user's patterns, types, body and return type are
//! compiled as written, so errors in them point at the user's code.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, FnArg, Ident, ItemFn, Pat, Type};

/// One argument of the user's function.
pub struct Argument {
    /// The wrapper's name for it.
    pub ident: Ident,
    pub ty: Type,
    /// The user's name for it, when its pattern is a plain name.
    pub name: Option<Ident>,
    /// Where the user wrote it, for errors about it.
    pub span: Span,
}

/// Checks what every wrapped function must be: async and without `self`.
pub fn check(function: &ItemFn, attribute: &str, what: &str) -> syn::Result<Vec<Argument>> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new_spanned(
            sig.fn_token,
            format!(
                "#[larder::{attribute}] goes on an async {what}: write `async fn {}(..)`",
                sig.ident
            ),
        ));
    }
    let mut arguments = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(Error::new_spanned(
                    receiver,
                    format!(
                        "#[larder::{attribute}] goes on a free async {what}, without `self`: \
                         call a free function from the method and put the attribute there"
                    ),
                ))
            }
            FnArg::Typed(typed) => arguments.push(Argument {
                ident: format_ident!("__larder_arg{i}"),
                ty: (*typed.ty).clone(),
                name: match &*typed.pat {
                    Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
                    _ => None,
                },
                span: typed.pat.span(),
            }),
        }
    }
    Ok(arguments)
}

/// The first `impl Trait` in a type, if any: such an argument makes the
/// function generic.
pub fn impl_trait(ty: &Type) -> Option<Span> {
    fn scan(tokens: TokenStream) -> Option<Span> {
        tokens.into_iter().find_map(|token| match token {
            TokenTree::Ident(ident) if ident == "impl" => Some(ident.span()),
            TokenTree::Group(group) => scan(group.stream()),
            _ => None,
        })
    }
    scan(ty.to_token_stream())
}
