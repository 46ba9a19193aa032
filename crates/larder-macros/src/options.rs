//! The attributes' options, read and checked at compile time. Every
//! mistake is a compile error on the offending token that says what to
//! write instead.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Error, Expr, Ident, Lit, LitStr, Path};

use crate::duration;

/// One attribute: its name and the options it takes.
pub struct Attribute {
    pub name: &'static str,
    pub options: &'static [&'static str],
}

/// The options given, as the attribute will use them.
#[derive(Default)]
pub struct Options {
    pub ttl: Option<u64>,
    pub namespace: Option<LitStr>,
    pub vary: Vec<LitStr>,
    pub tags: Vec<LitStr>,
    pub statuses: Vec<u16>,
    pub cache_control: Option<LitStr>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    pub early_refresh: Option<u64>,
    pub key: Option<Path>,
    pub cache: Option<LitStr>,
    pub honor_request_cache_control: Option<bool>,
    pub allow_authorization: Option<bool>,
    pub origin_headers: Option<Span>,
    pub invalidates: Vec<LitStr>,
    pub skip: Vec<Ident>,
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
                let (seconds, span) = duration_value(&meta)?;
                if seconds == 0 {
                    return Err(Error::new(
                        span,
                        "a `ttl` of zero caches nothing: give a positive duration such as \"15m\"",
                    ));
                }
                self.ttl = Some(seconds);
            }
            "stale_while_revalidate" => {
                self.stale_while_revalidate = Some(duration_value(&meta)?.0)
            }
            "stale_if_error" => self.stale_if_error = Some(duration_value(&meta)?.0),
            "early_refresh" => self.early_refresh = Some(duration_value(&meta)?.0),
            "namespace" => self.namespace = Some(string(&meta, "a namespace such as \"items\"")?),
            "cache" => {
                let name = string(&meta, "a cache's name such as \"sessions\"")?;
                if name.value().is_empty() {
                    return Err(Error::new(name.span(), "a cache's name cannot be empty"));
                }
                self.cache = Some(name);
            }
            "cache_control" => {
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
                self.cache_control = Some(value);
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
            "key" => self.key = Some(key_fn(&meta)?),
            "honor_request_cache_control" => self.honor_request_cache_control = Some(flag(&meta)?),
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

fn duration_value(meta: &ParseNestedMeta<'_>) -> syn::Result<(u64, Span)> {
    let name = meta
        .path
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_default();
    let expr: Expr = meta.value()?.parse()?;
    let Expr::Lit(lit) = &expr else {
        return Err(Error::new_spanned(
            &expr,
            format!("`{name}` takes a duration literal: {}", duration::HOW),
        ));
    };
    let seconds = duration::seconds(&lit.lit).map_err(|m| Error::new(lit.lit.span(), m))?;
    Ok((seconds, lit.lit.span()))
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
                "write the function's path without quotes: key = {}",
                s.value()
            ),
        )),
        other => Err(Error::new_spanned(
            other,
            "`key` takes the path of a `fn(&http::request::Parts) -> String`, such as key = tenant",
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
        ],
    };

    fn parse(tokens: &str) -> Result<Options, String> {
        Options::parse(&TEST, tokens.parse().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn options_are_read() {
        let o = parse(r#"ttl = "1h30m", namespace = "items", vary = ["Accept-Language"], statuses = [200, 404], skip(pool, db)"#).unwrap();
        assert_eq!(o.ttl, Some(5_400));
        assert_eq!(o.namespace.unwrap().value(), "items");
        assert_eq!(o.vary[0].value(), "accept-language");
        assert_eq!(o.statuses, [200, 404]);
        assert_eq!(o.skip.len(), 2);
        assert!(parse("origin_headers").unwrap().origin_headers.is_some());
    }

    #[test]
    fn mistakes_say_what_to_write() {
        for (tokens, says) in [
            ("tll = 60", "did you mean `ttl`?"),
            ("colour = 1", "it takes: ttl, namespace"),
            ("ttl = 1, ttl = 2", "given twice"),
            ("ttl = 0", "zero caches nothing"),
            ("ttl = 15m", "\"15m\""),
            ("ttl = MINUTE", "takes a duration literal"),
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
