//! The attributes' options, read and checked at compile time. Every
//! mistake is a compile error on the offending token that says what to
//! write instead.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Error, Expr, Ident, Lit, LitStr, Path};

use crate::duration;

/// One attribute: its name and the options it takes.
pub struct Attribute {
    pub name: &'static str,
    pub options: &'static [&'static str],
}

/// Options renamed to the name `Policy` and the proxy's TOML use: the old
/// spelling is an error that names the new one.
const RENAMED: &[(&str, &str)] = &[
    ("cache_control", "client_cache_control"),
    ("honor_request_cache_control", "honor_request_directives"),
    ("key", "key_extra"),
];

/// Other caches' words for `ttl`.
const TTL_ELSEWHERE: &[(&str, &str)] = &[("expire", "fastapi-cache"), ("timeout", "Django")];

/// A duration option's value.
pub enum DurationValue {
    /// A literal, checked here.
    Literal(Duration),
    /// Any other expression: a `core::time::Duration`, checked by the
    /// compiler (its type) and at run time (a zero `ttl`).
    Expr(Expr),
}

impl DurationValue {
    /// A zero literal: the option is off (a stale window, early refresh).
    pub fn is_zero_literal(&self) -> bool {
        matches!(self, DurationValue::Literal(d) if d.is_zero())
    }

    /// The literal, in whole milliseconds (all larder keeps).
    #[cfg(test)]
    pub fn millis(&self) -> Option<u64> {
        match self {
            DurationValue::Literal(d) => Some(d.as_millis() as u64),
            DurationValue::Expr(_) => None,
        }
    }
}

impl ToTokens for DurationValue {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(match self {
            DurationValue::Literal(d) => {
                let millis = d.as_millis() as u64;
                quote!(::core::time::Duration::from_millis(#millis))
            }
            // The type on the binding makes a mistake "expected `Duration`"
            // at the expression.
            DurationValue::Expr(expr) => quote_spanned! {expr.span()=>
                {
                    let duration: ::core::time::Duration = #expr;
                    duration
                }
            },
        });
    }
}

/// The options given, as the attribute will use them.
#[derive(Default)]
pub struct Options {
    pub ttl: Option<DurationValue>,
    pub namespace: Option<LitStr>,
    pub vary: Vec<LitStr>,
    pub tags: Vec<LitStr>,
    pub statuses: Vec<u16>,
    pub client_cache_control: Option<LitStr>,
    pub stale_while_revalidate: Option<DurationValue>,
    pub stale_if_error: Option<DurationValue>,
    pub early_refresh: Option<DurationValue>,
    pub key_extra: Option<Path>,
    pub cache: Option<LitStr>,
    pub honor_request_directives: Option<bool>,
    pub allow_authorization: Option<bool>,
    pub origin_headers: Option<Span>,
    pub invalidates: Vec<LitStr>,
    pub skip: Vec<Ident>,
    /// `#[larder::memoize(module = name)]`: the companion module's name.
    pub module: Option<Ident>,
    /// Each option given, where it was written.
    seen: Vec<(String, Span)>,
}

impl Options {
    pub fn parse(attribute: &Attribute, tokens: TokenStream) -> syn::Result<Options> {
        let mut options = Options::default();
        let parser = syn::meta::parser(|meta| options.one(attribute, meta));
        parser.parse2(tokens)?;
        Ok(options)
    }

    fn one(&mut self, attribute: &Attribute, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let path = &meta.path;
        let name = match path.get_ident() {
            Some(ident) => ident.to_string(),
            None => quote::quote!(#path).to_string().replace(' ', ""),
        };
        if !attribute.options.contains(&name.as_str()) {
            return Err(meta.error(unknown(attribute, &name)));
        }
        if self.given(&name).is_some() {
            return Err(meta.error(format!("`{name}` is given twice")));
        }
        let span = path.get_ident().map_or_else(Span::call_site, Ident::span);
        self.seen.push((name.clone(), span));
        match name.as_str() {
            "ttl" => {
                let (value, span) = duration_value(&meta)?;
                if value.is_zero_literal() {
                    return Err(Error::new(span, duration::ZERO_TTL));
                }
                self.ttl = Some(value);
            }
            // Zero is off, as if the option were not given.
            "stale_while_revalidate" => {
                self.stale_while_revalidate = duration_value(&meta)?.0.nonzero()
            }
            "stale_if_error" => self.stale_if_error = duration_value(&meta)?.0.nonzero(),
            "early_refresh" => self.early_refresh = duration_value(&meta)?.0.nonzero(),
            "namespace" => self.namespace = Some(string(&meta, "a namespace such as \"items\"")?),
            "cache" => {
                let name = string(&meta, "a cache's name such as \"sessions\"")?;
                if name.value().is_empty() {
                    return Err(Error::new(name.span(), "a cache's name cannot be empty"));
                }
                self.cache = Some(name);
            }
            "client_cache_control" => {
                let value = string(&meta, "a header value such as \"public, max-age=60\"")?;
                if !value
                    .value()
                    .bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
                {
                    return Err(Error::new(
                        value.span(),
                        "a Cache-Control value holds visible ASCII only, such as \"public, max-age=60\"",
                    ));
                }
                self.client_cache_control = Some(value);
            }
            "vary" => {
                for name in strings(&meta, "header names such as [\"accept-language\"]")? {
                    self.vary.push(header_name(&name)?);
                }
            }
            "tags" => self.tags = strings(&meta, "tags such as [\"items\"]")?,
            "invalidates" => {
                let namespaces = strings(&meta, "namespaces such as [\"items\"]")?;
                if let Some(empty) = namespaces.iter().find(|n| n.value().is_empty()) {
                    return Err(Error::new(
                        empty.span(),
                        "a namespace cannot be empty; name one such as \"items\"",
                    ));
                }
                self.invalidates = namespaces;
            }
            "statuses" => self.statuses = statuses(&meta)?,
            "key_extra" => self.key_extra = Some(key_fn(&meta)?),
            "honor_request_directives" => self.honor_request_directives = Some(flag(&meta)?),
            "allow_authorization" => self.allow_authorization = Some(flag(&meta)?),
            "origin_headers" => {
                if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    return Err(meta.error(
                        "`origin_headers` takes no value: write #[larder::cache(origin_headers)]",
                    ));
                }
                self.origin_headers = Some(
                    meta.path
                        .get_ident()
                        .map_or_else(Span::call_site, Ident::span),
                );
            }
            "module" => {
                let expr: Expr = meta.value()?.parse()?;
                match &expr {
                    Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                        self.module = p.path.get_ident().cloned();
                    }
                    _ => {
                        return Err(Error::new_spanned(
                            expr,
                            "`module` takes a name for the module of `purge` and `forget`, such as module = profile_cache",
                        ))
                    }
                }
            }
            "skip" => meta.parse_nested_meta(|arg| {
                match arg.path.get_ident() {
                    Some(ident) => self.skip.push(ident.clone()),
                    None => return Err(arg.error("skip takes argument names: skip(pool, db)")),
                }
                Ok(())
            })?,
            _ => unreachable!("every listed option is handled"),
        }
        Ok(())
    }

    /// Where the option `name` was written, if it was.
    pub fn given(&self, name: &str) -> Option<Span> {
        self.seen.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }
}

fn unknown(attribute: &Attribute, name: &str) -> String {
    if let Some((_, new)) = RENAMED
        .iter()
        .find(|(old, new)| *old == name && attribute.options.contains(new))
    {
        return format!(
            "`{name}` is now `{new}`, the name `Policy` and the proxy's TOML use: write {new} = .."
        );
    }
    if let Some((_, whose)) = TTL_ELSEWHERE.iter().find(|(word, _)| *word == name) {
        return format!(
            "unknown option `{name}` for #[larder::{}] (did you mean `ttl`?): `{name}` is {whose}'s word for how long a result is kept; larder's is `ttl`, such as ttl = \"15m\"",
            attribute.name
        );
    }
    let closest = attribute
        .options
        .iter()
        .map(|o| (distance(o, name), o))
        .filter(|(d, _)| *d <= 2)
        .min();
    let hint = match closest {
        Some((_, o)) => format!(" (did you mean `{o}`?)"),
        None => String::new(),
    };
    format!(
        "unknown option `{name}` for #[larder::{}]{hint}; it takes: {}",
        attribute.name,
        attribute.options.join(", ")
    )
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

impl DurationValue {
    fn nonzero(self) -> Option<Self> {
        (!self.is_zero_literal()).then_some(self)
    }
}

/// A duration: a literal checked here, or any expression of type
/// `Duration` (a const, `Duration::from_secs(60 * 5)`).
fn duration_value(meta: &ParseNestedMeta<'_>) -> syn::Result<(DurationValue, Span)> {
    let name = meta
        .path
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_default();
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(lit) => {
            let value = duration::literal(&lit.lit).map_err(|m| Error::new(lit.lit.span(), m))?;
            Ok((DurationValue::Literal(value), lit.lit.span()))
        }
        // `60 * 5` would be "expected `Duration`, found integer": say how.
        arithmetic if integer_arithmetic(arithmetic) => Err(Error::new_spanned(
            arithmetic,
            format!(
                "`{name}` takes a duration; an integer expression needs its unit: write \
                 Duration::from_secs({})",
                quote!(#arithmetic)
            ),
        )),
        _ => {
            let span = expr.span();
            Ok((DurationValue::Expr(expr), span))
        }
    }
}

/// Integer literals and arithmetic on them: `60 * 5`, `-1`, `(2 + 3)`.
fn integer_arithmetic(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.suffix().is_empty(),
        Expr::Binary(b) => integer_arithmetic(&b.left) && integer_arithmetic(&b.right),
        Expr::Unary(u) => integer_arithmetic(&u.expr),
        Expr::Paren(p) => integer_arithmetic(&p.expr),
        _ => false,
    }
}

fn string(meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(Error::new_spanned(
            other,
            format!("expected {what}, in quotes"),
        )),
    }
}

/// A list of strings: `["a", "b"]`, or one string alone.
fn strings(meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<Vec<LitStr>> {
    let expr: Expr = meta.value()?.parse()?;
    let items = match expr {
        Expr::Array(array) => array.elems.into_iter().collect(),
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| match item {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(s),
            other => Err(Error::new_spanned(other, format!("expected {what}"))),
        })
        .collect()
}

/// A request header name as `http::HeaderName::from_static` takes it:
/// lowercase token characters (RFC 9110 §5.1).
fn header_name(name: &LitStr) -> syn::Result<LitStr> {
    let lower = name.value().to_ascii_lowercase();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if lower.is_empty() || !lower.bytes().all(token) {
        return Err(Error::new(
            name.span(),
            format!(
                "{:?} is not a header name; write one such as \"accept-language\"",
                name.value()
            ),
        ));
    }
    Ok(LitStr::new(&lower, name.span()))
}

fn statuses(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<u16>> {
    let expr: Expr = meta.value()?.parse()?;
    let items: Vec<Expr> = match expr {
        Expr::Array(array) => array.elems.into_iter().collect(),
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| {
            let status = match &item {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Int(i), ..
                }) => i.base10_parse::<u16>().ok(),
                _ => None,
            };
            status.filter(|s| (100..=999).contains(s)).ok_or_else(|| {
                Error::new_spanned(
                    item,
                    "expected an HTTP status from 100 to 999, such as statuses = [200, 404]",
                )
            })
        })
        .collect()
}

fn key_fn(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Err(Error::new(
            s.span(),
            format!(
                "write the function's path without quotes: key_extra = {}",
                s.value()
            ),
        )),
        other => Err(Error::new_spanned(
            other,
            "`key_extra` takes the path of a `fn(&http::request::Parts) -> String`, such as key_extra = tenant",
        )),
    }
}

fn flag(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(Error::new_spanned(other, "expected `true` or `false`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Attribute = Attribute {
        name: "cache",
        options: &[
            "ttl",
            "namespace",
            "vary",
            "statuses",
            "skip",
            "origin_headers",
            "client_cache_control",
            "stale_if_error",
        ],
    };

    fn parse(tokens: &str) -> Result<Options, String> {
        Options::parse(&TEST, tokens.parse().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn options_are_read() {
        let o = parse(r#"ttl = "1h30m", namespace = "items", vary = ["Accept-Language"], statuses = [200, 404], skip(pool, db)"#).unwrap();
        assert_eq!(o.ttl.unwrap().millis(), Some(5_400_000));
        assert_eq!(o.namespace.unwrap().value(), "items");
        assert_eq!(o.vary[0].value(), "accept-language");
        assert_eq!(o.statuses, [200, 404]);
        assert_eq!(o.skip.len(), 2);
        assert!(parse("origin_headers").unwrap().origin_headers.is_some());
        assert_eq!(
            parse(r#"ttl = "250ms""#).unwrap().ttl.unwrap().millis(),
            Some(250)
        );
        let o = parse("ttl = TTL, stale_if_error = Duration::from_secs(60 * 5)").unwrap();
        assert!(matches!(o.ttl, Some(DurationValue::Expr(_))));
        assert!(matches!(o.stale_if_error, Some(DurationValue::Expr(_))));
        // A zero window is off, as if not given.
        assert!(parse(r#"stale_if_error = "0s""#)
            .unwrap()
            .stale_if_error
            .is_none());
    }

    #[test]
    fn mistakes_say_what_to_write() {
        for (tokens, says) in [
            ("tll = 60", "did you mean `ttl`?"),
            ("colour = 1", "it takes: ttl, namespace"),
            ("ttl = 1, ttl = 2", "given twice"),
            ("ttl = 0", "zero caches nothing"),
            ("ttl = \"0s\"", "zero caches nothing"),
            ("ttl = 15m", "\"15m\""),
            ("ttl = 60 * 5", "Duration::from_secs(60 * 5)"),
            (
                "ttl = \"15 parsecs\"",
                "is not a duration: unknown time unit",
            ),
            (
                "cache_control = \"x\"",
                "`cache_control` is now `client_cache_control`",
            ),
            (
                "expire = 60",
                "did you mean `ttl`?): `expire` is fastapi-cache's word",
            ),
            ("timeout = 60", "`timeout` is Django's word"),
            ("vary = [\"bad name\"]", "not a header name"),
            ("statuses = [42]", "from 100 to 999"),
            ("namespace = items", "in quotes"),
            ("origin_headers = true", "takes no value"),
        ] {
            let err = parse(tokens).err().unwrap_or_default();
            assert!(err.contains(says), "{tokens}: {err}");
        }
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("ttl", "ttl"), 0);
        assert_eq!(distance("ttl", "tll"), 1);
        assert_eq!(distance("namespace", "namespac"), 1);
        assert_eq!(distance("", "abc"), 3);
    }
}
