//! `#[larder::cache]`: an axum handler that asks the cache first.
//!
//! ```text
//! #[larder::cache(ttl = "15m")]
//! async fn list_items(State(db): State<Db>) -> Json<Vec<Item>> { .. }
//! ```
//! becomes
//! ```text
//! static __larder_static_list_items: ::larder::axum::CachedRoute = /* name, cache, policy */;
//! struct __larder_route_list_items; // `KnownRoute`: the static
//! async fn list_items(
//!     (__larder_request, __larder_arg0): (
//!         ::larder::axum::CacheRequest<__larder_route_list_items>,
//!         State<Db>,
//!     ),
//! ) -> ::larder::__private::Response {
//!     async fn list_items(State(db): State<Db>) -> Json<Vec<Item>> { .. }
//!     ::larder::axum::run(__larder_request, &__larder_static_list_items, list_items(__larder_arg0)).await
//! }
//! ```
//!
//! The route is a type so that the extractor, knowing the policy, answers
//! a hot-tier hit without copying the request (`run` sends it, after the
//! other extractors ran). The two items beside the handler make the
//! attribute a module-level one: it cannot go on a function in an `impl`
//! block.
//!
//! The cache's extractor rides in a tuple with the handler's first one
//! (axum extracts tuples of extractors), so the wrapper takes as many
//! arguments as the handler: `#[axum::debug_handler]` above the attribute
//! checks a call with the handler's own arity. Below it, it is moved onto
//! the handler itself.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Error, ItemFn};

use crate::options::{Attribute, Options};
use crate::signature;

pub const ATTRIBUTE: Attribute = Attribute {
    name: "cache",
    options: &[
        "ttl",
        "namespace",
        "vary",
        "tags",
        "statuses",
        "client_cache_control",
        "stale_while_revalidate",
        "stale_if_error",
        "early_refresh",
        "key_extra",
        "cache",
        "honor_request_directives",
        "allow_authorization",
        "origin_headers",
        "invalidates",
    ],
};

/// Options that shape a stored response: a write handler (no `ttl`, no
/// `origin_headers`) stores nothing, so they would mean nothing there.
const ENTRY_OPTIONS: &[&str] = &[
    "vary",
    "tags",
    "statuses",
    "client_cache_control",
    "stale_while_revalidate",
    "stale_if_error",
    "early_refresh",
    "honor_request_directives",
    "allow_authorization",
];

/// axum implements `Handler` for functions of up to 16 extractors (the
/// cache's shares a tuple with the first, so it adds none).
const MAX_ARGUMENTS: usize = 16;

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = Options::parse(&ATTRIBUTE, attr)?;
    let arguments = signature::check(&function, "cache", "axum handler")?;
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        return Err(generic(&sig.ident, &sig.generics));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        return Err(generic(&sig.ident, where_clause));
    }
    if let Some(span) = arguments.iter().find_map(|a| signature::impl_trait(&a.ty)) {
        return Err(generic(&sig.ident, quote::quote_spanned!(span=> impl)));
    }
    if arguments.len() > MAX_ARGUMENTS {
        return Err(Error::new_spanned(
            &sig.inputs,
            format!(
                "axum handlers take at most {MAX_ARGUMENTS} extractors; group some into a struct \
                 that implements FromRequestParts"
            ),
        ));
    }
    let policy = policy(&options)?;

    let ItemFn {
        attrs, vis, block, ..
    } = &function;
    let name = &sig.ident;
    let name_text = name.to_string();
    let cache = match &options.cache {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let idents: Vec<_> = arguments.iter().map(|a| &a.ident).collect();
    // The cache's extractor shares a tuple with the first argument.
    // The route as a type, so that the extractor can answer a hot hit
    // without copying the request.
    let marker = quote::format_ident!("__larder_route_{}", name);
    let route = quote::format_ident!("__larder_static_{}", name);
    let request = quote!(::larder::axum::CacheRequest<#marker>);
    let params = match arguments.split_first() {
        None => quote!(__larder_request: #request),
        Some((first, rest)) => {
            let (ident, ty) = (&first.ident, &first.ty);
            let rest = rest.iter().map(|a| {
                let (ident, ty) = (&a.ident, &a.ty);
                quote!(#ident: #ty)
            });
            quote! {
                (__larder_request, #ident): (#request, #ty),
                #(#rest),*
            }
        }
    };
    // `#[axum::debug_handler]` under the attribute checks the handler as
    // written, not the wrapper.
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) =
        attrs.iter().partition(|a| is_debug_handler(a));
    Ok(quote! {
        #[allow(non_upper_case_globals)]
        static #route: ::larder::axum::CachedRoute =
            ::larder::axum::CachedRoute::new(#name_text, #cache, || #policy);
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker;
        impl ::larder::axum::KnownRoute for #marker {
            fn route() -> ::core::option::Option<&'static ::larder::axum::CachedRoute> {
                ::core::option::Option::Some(&#route)
            }
        }
        #(#outer_attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis async fn #name(#params) -> ::larder::__private::Response {
            #(#inner_attrs)*
            #sig #block
            ::larder::axum::run(__larder_request, &#route, #name(#(#idents),*)).await
        }
    })
}

/// `#[debug_handler]`, `#[axum::debug_handler]`, `#[axum_macros::debug_handler]`.
fn is_debug_handler(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "debug_handler")
}

fn generic(name: &syn::Ident, at: impl quote::ToTokens) -> Error {
    Error::new_spanned(
        at,
        format!(
            "#[larder::cache] cannot go on a generic handler: axum routes one concrete function. \
             Put the attribute on a non-generic `async fn` that calls `{name}` with concrete types"
        ),
    )
}

/// The `Policy` the options describe, as an expression. Each option is
/// one builder call: the attribute holds no caching rule of its own.
///
/// Without `ttl` or `origin_headers` the handler is a write handler
/// (`Policy::write`): it stores nothing and its successful answers
/// invalidate. The attribute cannot see which methods the router sends it,
/// so a `ttl` is never refused: on a POST it is ignored, as every write
/// stores nothing, and on a GET it caches.
fn policy(o: &Options) -> syn::Result<TokenStream> {
    let mut policy = match (&o.ttl, o.origin_headers) {
        (Some(_), Some(span)) => return Err(Error::new(
            span,
            "`origin_headers` takes freshness from the response; it cannot be combined with `ttl`",
        )),
        (Some(ttl), None) => quote!(::larder::Policy::ttl(#ttl)),
        (None, Some(_)) => quote!(::larder::Policy::origin_headers()),
        (None, None) => {
            if let Some((name, span)) = ENTRY_OPTIONS
                .iter()
                .find_map(|name| o.given(name).map(|span| (name, span)))
            {
                return Err(Error::new(
                    span,
                    format!(
                        "`{name}` shapes stored responses, and without a `ttl` this is a write \
                         handler that stores nothing: give it a `ttl` such as ttl = \"15m\" to \
                         cache the GETs it answers, or remove `{name}`"
                    ),
                ));
            }
            quote!(::larder::Policy::write())
        }
    };
    if let Some(namespace) = &o.namespace {
        policy.extend(quote!(.namespace(#namespace)));
    }
    if !o.vary.is_empty() {
        let names = &o.vary;
        policy.extend(quote!(.vary([#(::larder::__private::HeaderName::from_static(#names)),*])));
    }
    if !o.tags.is_empty() {
        let tags = &o.tags;
        policy.extend(quote!(.tags([#(#tags),*])));
    }
    if !o.statuses.is_empty() {
        let statuses = &o.statuses;
        policy.extend(quote!(.statuses([#(
            match ::larder::__private::StatusCode::from_u16(#statuses) {
                ::core::result::Result::Ok(status) => status,
                ::core::result::Result::Err(_) => ::core::unreachable!(),
            }
        ),*])));
    }
    if let Some(value) = &o.client_cache_control {
        policy.extend(
            quote!(.client_cache_control(::larder::ClientCacheControl::Fixed(
                ::larder::__private::HeaderValue::from_static(#value)
            ))),
        );
    }
    if let Some(window) = &o.stale_while_revalidate {
        policy.extend(quote!(.stale_while_revalidate(#window)));
    }
    if let Some(delta) = &o.early_refresh {
        policy.extend(quote!(.early_refresh(#delta)));
    }
    if let Some(window) = &o.stale_if_error {
        policy.extend(quote!(.stale_if_error(#window)));
    }
    if let Some(key) = &o.key_extra {
        policy.extend(quote!(.key_extra(#key)));
    }
    if !o.invalidates.is_empty() {
        let namespaces = &o.invalidates;
        policy.extend(quote!(.invalidates([#(#namespaces),*])));
    }
    if let Some(honor) = o.honor_request_directives {
        policy.extend(quote!(.honor_request_directives(#honor)));
    }
    if let Some(allow) = o.allow_authorization {
        policy.extend(quote!(.allow_authorization(#allow)));
    }
    Ok(policy)
}
