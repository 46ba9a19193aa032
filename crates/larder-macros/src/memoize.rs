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
//!     let __larder_key = ::larder::memo::Key::new().arg(&__larder_arg1); // spanned on `id`
//!     profile::MEMO.call(__larder_key, profile(__larder_arg0, __larder_arg1)).await
//! }
//! mod profile {
//!     pub(super) static MEMO: ::larder::memo::Memoized = /* path, namespace, ttl, cache */;
//!     pub async fn purge() { MEMO.purge().await }
//! }
//! ```

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Error, Ident, ItemFn, ReturnType, Type};

use crate::options::{Attribute, Options};
use crate::signature;

pub const ATTRIBUTE: Attribute = Attribute {
    name: "memoize",
    options: &["ttl", "namespace", "skip", "cache"],
};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = Options::parse(&ATTRIBUTE, attr)?;
    let arguments = signature::check(&function, "memoize", "function")?;
    let Some(ttl) = options.ttl else {
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
    // One call per argument, spanned on it: an argument that cannot be
    // keyed is named in exactly one error, with the way out (Keyable's
    // diagnostic says it).
    let key_parts = keyed.iter().map(|a| {
        let ident = Ident::new(&a.ident.to_string(), a.span);
        quote_spanned!(a.span=> .arg(&#ident))
    });
    let call = quote!(#name(#(#idents),*));
    let run = if returns_result(output) {
        quote!(#name::MEMO.call(__larder_key, #call).await)
    } else {
        quote! {
            let __larder_call = #call;
            let __larder_result = #name::MEMO.call(__larder_key, async move {
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
    let purge_doc = format!(
        "The cache of [`{name}`](fn@{name}), made by `#[larder::memoize]`: `{name}::purge().await` forgets every result it stored."
    );
    Ok(quote! {
        #(#attrs)*
        #vis async fn #name #generics(#(#idents: #types),*) #output #where_clause {
            #sig #block
            let __larder_key = ::larder::memo::Key::new() #(#key_parts)*;
            #run
        }

        #[doc = #purge_doc]
        #vis mod #name {
            // Inside the module, module_path!() is the function's own path.
            pub(super) static MEMO: ::larder::memo::Memoized = ::larder::memo::Memoized::new(
                ::core::module_path!(),
                #namespace,
                ::core::time::Duration::from_secs(#ttl),
                #cache,
            );

            /// Forgets every stored result of the function, whatever its arguments.
            pub async fn purge() {
                MEMO.purge().await
            }
        }
    })
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
