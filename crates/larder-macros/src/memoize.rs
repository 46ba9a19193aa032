//! `#[larder::memoize]`: an async function whose results are kept in the
//! cache, keyed by its arguments.
//!
//! ```text
//! #[larder::memoize(ttl = "5m", skip(pool))]
//! async fn profile(pool: &Pool, id: u64) -> Result<Profile, Error> { .. }
//! ```
//! becomes
//! ```text
//! async fn profile(__larder_arg0: &Pool, __larder_arg1: u64) -> Result<Profile, Error> {
//!     async fn profile(pool: &Pool, id: u64) -> Result<Profile, Error> { .. }
//!     let __larder_key = profile::__key(&__larder_arg1);
//!     profile::MEMO.call(__larder_key, profile(__larder_arg0, __larder_arg1)).await
//! }
//! mod profile {
//!     use super::*; // the argument types and the ttl, as written beside the function
//!     const __LARDER_TTL: ::core::time::Duration = /* the ttl */;
//!     const _: () = assert!(!__LARDER_TTL.is_zero(), "a ttl of zero caches nothing: ..");
//!     pub(super) static MEMO: ::larder::memo::Memoized = /* path, namespace, ttl, cache */;
//!     pub async fn purge() { MEMO.purge().await }
//!     pub async fn forget(id: u64) { MEMO.forget(__key(&id)).await }
//!     pub(super) fn __key(id: &u64) -> ::larder::memo::Key {
//!         ::larder::memo::Key::new().arg(id) // spanned on `id`
//!     }
//! }
//! ```
//!
//! The module is named after the function unless `module = name` says
//! otherwise (when an item of the function's name is already there).

use proc_macro2::{Group, Spacing, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, Ident, ItemFn, ReturnType, Type};

use crate::duration;
use crate::options::{Attribute, DurationValue, Options};
use crate::signature;

pub const ATTRIBUTE: Attribute = Attribute {
    name: "memoize",
    options: &["ttl", "namespace", "skip", "cache", "module"],
};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = Options::parse(&ATTRIBUTE, attr)?;
    let arguments = signature::check(&function, "memoize", "function")?;
    let Some(ttl) = &options.ttl else {
        return Err(Error::new(
            proc_macro2::Span::call_site(),
            "#[larder::memoize] needs a `ttl`, such as #[larder::memoize(ttl = \"5m\")]",
        ));
    };
    // One static serves every instantiation, so results of different types
    // would share keys.
    let generic = function
        .sig
        .generics
        .type_params()
        .map(syn::spanned::Spanned::span)
        .chain(
            function
                .sig
                .generics
                .const_params()
                .map(syn::spanned::Spanned::span),
        )
        .chain(
            arguments
                .iter()
                .filter_map(|a| signature::impl_trait(&a.ty)),
        )
        .next();
    if let Some(span) = generic {
        return Err(Error::new(
            span,
            "#[larder::memoize] cannot go on a generic function: its results for different types \
             would share one key. Memoize a non-generic function that calls it with concrete types",
        ));
    }
    for skipped in &options.skip {
        if !arguments.iter().any(|a| a.name.as_ref() == Some(skipped)) {
            return Err(Error::new(
                skipped.span(),
                format!(
                    "`{skipped}` is not an argument of `{}`: skip(..) takes the names of its arguments",
                    function.sig.ident
                ),
            ));
        }
    }

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &function;
    let name = &sig.ident;
    let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
    let output = &sig.output;
    let idents: Vec<_> = arguments.iter().map(|a| &a.ident).collect();
    let types = arguments.iter().map(|a| &a.ty);
    let keyed: Vec<_> = arguments
        .iter()
        .filter(|a| !a.name.as_ref().is_some_and(|n| options.skip.contains(n)))
        .collect();
    // The key is made in one place, the module's `__key`, for calls and
    // `forget` alike: one `arg` call per argument, spanned on it, so that
    // an argument that cannot be keyed is named in exactly one error, with
    // the way out (Keyable's diagnostic says it).
    let key_names: Vec<_> = keyed
        .iter()
        .enumerate()
        .map(|(i, a)| match &a.name {
            Some(name) => Ident::new(&name.to_string(), a.span),
            None => format_ident!("__larder_arg{i}", span = a.span),
        })
        .collect();
    let key_types: Vec<_> = keyed
        .iter()
        .map(|a| rebase(a.ty.to_token_stream()))
        .collect();
    let key_parts = key_names
        .iter()
        .zip(&keyed)
        .map(|(ident, a)| quote_spanned!(a.span=> .arg(#ident)));
    let key_args = keyed.iter().map(|a| {
        let ident = &a.ident;
        quote!(&#ident)
    });
    let module = options.module.as_ref().unwrap_or(name);
    let call = quote!(#name(#(#idents),*));
    let run = if returns_result(output) {
        quote!(#module::MEMO.call(__larder_key, #call).await)
    } else {
        quote! {
            let __larder_call = #call;
            let __larder_result = #module::MEMO.call(__larder_key, async move {
                ::core::result::Result::<_, ::core::convert::Infallible>::Ok(__larder_call.await)
            });
            match __larder_result.await {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(never) => match never {},
            }
        }
    };
    let namespace = options
        .namespace
        .as_ref()
        .map_or_else(|| quote!("default"), |n| quote!(#n));
    let cache = match &options.cache {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let module_doc = format!(
        "The cache of [`{name}`](fn@{name}), made by `#[larder::memoize]`: \
         `{module}::forget(..).await` forgets the result for some arguments, \
         `{module}::purge().await` every result it stored."
    );
    // A constant that comes to zero fails to compile, at the expression.
    let ttl_span = match ttl {
        DurationValue::Expr(expr) => expr.span(),
        DurationValue::Literal(_) => proc_macro2::Span::call_site(),
    };
    let ttl = rebase(ttl.to_token_stream());
    let zero_ttl = duration::ZERO_TTL;
    let zero_check = quote_spanned! {ttl_span=>
        const _: () = ::core::assert!(!__LARDER_TTL.is_zero(), #zero_ttl);
    };
    Ok(quote! {
        #(#attrs)*
        #vis async fn #name #generics(#(#idents: #types),*) #output #where_clause {
            #sig #block
            let __larder_key = #module::__key(#(#key_args),*);
            #run
        }

        #[doc = #module_doc]
        #vis mod #module {
            // What the function's signature and the ttl name, from beside it.
            #[allow(unused_imports)]
            use super::*;

            const __LARDER_TTL: ::core::time::Duration = #ttl;
            #zero_check

            // Inside the module, module_path!() is the function's own path
            // (the module's, under `module = ..`).
            pub(super) static MEMO: ::larder::memo::Memoized = ::larder::memo::Memoized::new(
                ::core::module_path!(),
                #namespace,
                __LARDER_TTL,
                #cache,
            );

            /// Forgets every stored result of the function, whatever its arguments.
            pub async fn purge() {
                MEMO.purge().await
            }

            /// Forgets the stored result for these arguments (those that
            /// form the key: `skip(..)` ones are not taken), so that the
            /// next call with them runs the function.
            pub async fn forget #generics(#(#key_names: #key_types),*) #where_clause {
                MEMO.forget(__key(#(&#key_names),*)).await
            }

            /// The key of one call: the arguments that are not skipped.
            #[doc(hidden)]
            pub(super) fn __key #generics(#(#key_names: &#key_types),*) -> ::larder::memo::Key #where_clause {
                ::larder::memo::Key::new() #(#key_parts)*
            }
        }
    })
}

/// Tokens written beside the function, made to mean the same from inside
/// its module: a path that starts at `self` or `super` gains one `super`.
fn rebase(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut after_colons = 0;
    for token in tokens {
        match &token {
            TokenTree::Ident(ident)
                if after_colons < 2 && (ident == "self" || ident == "super") =>
            {
                let span = ident.span();
                out.push(TokenTree::Ident(Ident::new("super", span)));
                if ident == "super" {
                    out.extend(quote_spanned!(span=> :: super));
                }
                after_colons = 0;
                continue;
            }
            TokenTree::Group(group) => {
                let mut rebased = Group::new(group.delimiter(), rebase(group.stream()));
                rebased.set_span(group.span());
                out.push(TokenTree::Group(rebased));
                after_colons = 0;
                continue;
            }
            TokenTree::Punct(p) if p.as_char() == ':' => {
                after_colons = if p.spacing() == Spacing::Joint || after_colons == 1 {
                    after_colons + 1
                } else {
                    0
                };
            }
            _ => after_colons = 0,
        }
        out.push(token);
    }
    out.into_iter().collect()
}

/// `Result<T, E>` by its last path segment, so that `io::Result<T>` and
/// aliases named `Result` count: only their `Ok` values are stored.
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_self_or_super_gain_one_super() {
        let rebased = |t: &str| rebase(t.parse().unwrap()).to_string().replace(' ', "");
        assert_eq!(rebased("self::Id"), "super::Id");
        assert_eq!(rebased("super::Id"), "super::super::Id");
        assert_eq!(rebased("&'a[super::Id]"), "&'a[super::super::Id]");
        assert_eq!(rebased("Vec<self::a::Id>"), "Vec<super::a::Id>");
        assert_eq!(
            rebased("crate::a::self_made::Id"),
            "crate::a::self_made::Id"
        );
        assert_eq!(rebased("Id"), "Id");
    }
}
