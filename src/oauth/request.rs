//! Token, introspection and revocation request bodies: form or JSON.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::client_auth::BodyCredentials;
use super::OAuthError;

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// More parameters than any endpoint reads, with room for unknown ones.
pub const MAX_PARAMS: usize = 64;
/// Longest parameter name, and value (a JWT with claims fits easily).
pub const MAX_NAME_BYTES: usize = 128;
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// The text before and after the first `byte` (ASCII, so both are text).
fn cut(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == byte)?;
    Some((&s[..i], &s[i + 1..]))
}

/// The parameters of a request body, in order, each name at most once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// RFC 6749 §3.2: "Request and response parameters MUST NOT be included
    /// more than once", and parameters sent without a value are treated as
    /// omitted.
    fn push(&mut self, name: String, value: String) -> Result<(), OAuthError> {
        if self.0.len() >= MAX_PARAMS {
            return Err(OAuthError::invalid_request(format!(
                "more than {MAX_PARAMS} parameters"
            )));
        }
        if name.len() > MAX_NAME_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(OAuthError::invalid_request(format!(
                "a parameter name or value is too long (at most {MAX_NAME_BYTES} and {MAX_VALUE_BYTES} bytes)"
            )));
        }
        if self.0.iter().any(|(n, _)| *n == name) {
            return Err(if name == "resource" {
                // RFC 8707 §2 allows several resources; Writ issues a token for one.
                OAuthError::new(
                    super::ErrorCode::InvalidTarget,
                    "only one resource may be requested per token",
                )
            } else {
                OAuthError::invalid_request(format!("parameter '{name}' is repeated"))
            });
        }
        if !value.is_empty() {
            self.0.push((name, value));
        }
        Ok(())
    }

    /// Names and values, in the order they were sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = Params::default();
        if body.iter().all(|&b| b.is_ascii() && b != b'%' && b != b'+') {
            // ASCII with nothing encoded, the usual case: the pairs are the
            // bytes themselves, which decoding would copy unchanged. One
            // pass over the body, split at bytes: checking it as UTF-8 and
            // for U+FFFD, then splitting it as text, were 2.5k instructions.
            let text = std::str::from_utf8(body).unwrap_or_default(); // ASCII
            let mut rest = Some(text);
            while let Some(s) = rest {
                let (pair, tail) = cut(s, b'&').map_or((s, None), |(p, t)| (p, Some(t)));
                rest = tail;
                if !pair.is_empty() {
                    let (name, value) = cut(pair, b'=').unwrap_or((pair, ""));
                    params.push(name.to_owned(), value.to_owned())?;
                }
            }
            return Ok(params);
        }
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request("the body is not valid UTF-8"));
        }
        for (name, value) in form_urlencoded::parse(body) {
            // The decoder replaces percent-encoded bytes that are not UTF-8,
            // and passes a U+FFFD sent as it is: both refused, pair by pair.
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(OAuthError::invalid_request(
                    "a parameter is not valid UTF-8 once decoded",
                ));
            }
            params.push(name.into_owned(), value.into_owned())?;
        }
        Ok(params)
    }

    /// An `application/json` body: one object whose values are strings, or
    /// numbers where `numeric` allows them (WSO2's `validity_period`).
    pub fn from_json(body: &[u8], numeric: &[&str]) -> Result<Self, OAuthError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let raw = de
            .deserialize_map(ObjectVisitor)
            .and_then(|raw| de.end().map(|()| raw))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => match e.to_string() {
                    m if m.starts_with("writ:") => OAuthError::invalid_request(
                        m.trim_start_matches("writ:")
                            .split(" at line")
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                    _ => OAuthError::invalid_request("the body must be a JSON object"),
                },
                _ => OAuthError::invalid_request("the body is not valid JSON"),
            })?;
        let mut params = Params::default();
        for (name, value) in raw {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) if numeric.contains(&name.as_str()) => n.to_string(),
                serde_json::Value::Null => String::new(),
                _ => {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter '{name}' must be a string"
                    )))
                }
            };
            params.push(name, value)?;
        }
        Ok(params)
    }
}

/// Reads a JSON object keeping every member, so repeated names can be refused
/// (serde_json's own map keeps the last silently).
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, serde_json::Value)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value()?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(de::Error::custom(format!(
                    "writ:parameter '{name}' is repeated"
                )));
            }
            out.push((name, value));
        }
        Ok(out)
    }
}

/// The body's format, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Form,
    Json,
}

impl BodyFormat {
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, OAuthError> {
        let Some(ct) = content_type else {
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded or application/json",
            ));
        };
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(Self::Form)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else {
            Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded or application/json",
            ))
        }
    }

    pub fn parse(self, body: &[u8]) -> Result<Params, OAuthError> {
        match self {
            Self::Form => Params::from_form(body),
            Self::Json => Params::from_json(body, &["validity_period"]),
        }
    }
}

/// A token request's parameters (RFC 6749 §4.4.2, RFC 8707 §2, WSO2's
/// `validity_period`); unknown parameters are ignored (RFC 6749 §3.2).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    /// `client_id`, `client_secret`, `client_assertion_type`, `client_assertion`.
    pub credentials: BodyCredentials,
    pub scope: Option<String>,
    /// `audience` (Auth0) or `resource` (RFC 8707): whichever was sent.
    pub audience: Option<String>,
    pub validity_period: Option<u64>,
}

impl TokenRequest {
    pub fn from_params(mut params: Params) -> Result<Self, OAuthError> {
        let mut take = |name: &str| {
            params
                .0
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| params.0.swap_remove(i).1)
        };
        let grant_type = take("grant_type");
        let credentials = BodyCredentials {
            client_id: take("client_id"),
            client_secret: take("client_secret"),
            client_assertion_type: take("client_assertion_type"),
            client_assertion: take("client_assertion"),
        };
        let scope = take("scope");
        let audience = match (take("audience"), take("resource")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "send either 'audience' or 'resource', not both",
                ))
            }
            (a, r) => a.or(r),
        };
        let validity_period = take("validity_period")
            .map(|v| parse_validity_period(&v))
            .transpose()?;
        Ok(Self {
            grant_type,
            credentials,
            scope,
            audience,
            validity_period,
        })
    }
}

/// A positive whole number of seconds; a larger value than fits is as good as
/// "as long as allowed", since it is capped anyway.
fn parse_validity_period(value: &str) -> Result<u64, OAuthError> {
    let err = || OAuthError::invalid_request("'validity_period' must be a positive integer");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    match value.parse::<u64>() {
        Ok(0) => Err(err()),
        Ok(n) => Ok(n),
        Err(_) => Ok(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    #[test]
    fn rfc6749_3_2_rejects_repeated_form_parameter() {
        let err = Params::from_form(b"grant_type=client_credentials&scope=a&scope=b").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.description, "parameter 'scope' is repeated");
    }

    #[test]
    fn rfc6749_3_2_rejects_repeated_json_member() {
        let err = Params::from_json(br#"{"scope":"a","scope":"b"}"#, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.description, "parameter 'scope' is repeated");
    }

    #[test]
    fn rfc8707_2_repeated_resource_is_invalid_target() {
        let err = Params::from_form(b"resource=https://a&resource=https://b").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn rfc6749_3_2_empty_values_are_omitted() {
        let p = Params::from_form(b"grant_type=client_credentials&scope=").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
    }

    #[test]
    fn too_many_or_too_long_parameters_are_invalid_request() {
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=x&")).collect();
        assert!(Params::from_form(many.as_bytes()).is_err());
        let long = format!("scope={}", "a".repeat(MAX_VALUE_BYTES + 1));
        assert!(Params::from_form(long.as_bytes()).is_err());
        let name = format!("{}=x", "n".repeat(MAX_NAME_BYTES + 1));
        assert!(Params::from_form(name.as_bytes()).is_err());
        let ok = format!("scope={}", "a".repeat(MAX_VALUE_BYTES));
        assert!(Params::from_form(ok.as_bytes()).is_ok());
    }

    #[test]
    fn form_without_encoding_parses_as_the_decoder_would() {
        // The plain-text path against form_urlencoded, and the same form
        // with one byte encoded (which takes the decoder's path).
        for form in [
            "grant_type=client_credentials",
            "a=1&&b=2&",
            "&a&b=&c==x=y",
            "audience=https://api.example/v1?x=y&scope=read:a",
            "",
        ] {
            let ours: Vec<(String, String)> = Params::from_form(form.as_bytes())
                .unwrap()
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, theirs, "{form}");
            let encoded = format!("{form}&z=%41");
            let p = Params::from_form(encoded.as_bytes()).unwrap();
            assert_eq!(p.iter().count(), theirs.len() + 1, "{encoded}");
            assert_eq!(p.get("z"), Some("A"));
        }
    }

    #[test]
    fn form_with_a_replacement_character_is_refused_on_either_path() {
        for form in ["scope=a\u{FFFD}b", "scope=a\u{FFFD}b&z=%41"] {
            let err = Params::from_form(form.as_bytes()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{form}");
        }
    }

    #[test]
    fn form_decodes_plus_and_percent() {
        let p = Params::from_form(b"scope=a+b%3Ac").unwrap();
        assert_eq!(p.get("scope"), Some("a b:c"));
    }

    #[test]
    fn form_rejects_invalid_utf8_after_decoding() {
        assert!(Params::from_form(b"scope=%FF").is_err());
        assert!(Params::from_form(b"scope=\xff").is_err());
    }

    #[test]
    fn json_values_must_be_strings_except_validity_period() {
        let err = Params::from_json(br#"{"scope":["a"]}"#, &["validity_period"]).unwrap_err();
        assert_eq!(err.description, "parameter 'scope' must be a string");
        let p = Params::from_json(br#"{"validity_period":60}"#, &["validity_period"]).unwrap();
        assert_eq!(p.get("validity_period"), Some("60"));
    }

    #[test]
    fn json_must_be_an_object() {
        for body in [&b"[]"[..], b"\"x\"", b"{", b"{} x", b""] {
            let err = Params::from_json(body, &[]).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{body:?}");
        }
    }

    #[test]
    fn validity_period_must_be_a_positive_integer() {
        for bad in ["0", "-5", "1.5", "abc", " 5"] {
            let p = Params::from_form(format!("validity_period={bad}").as_bytes()).unwrap();
            assert!(TokenRequest::from_params(p).is_err(), "{bad}");
        }
        let p = Params::from_form(b"validity_period=99999999999999999999999").unwrap();
        assert_eq!(
            TokenRequest::from_params(p).unwrap().validity_period,
            Some(u64::MAX)
        );
    }

    #[test]
    fn rfc8707_audience_and_resource_together_are_refused() {
        let p = Params::from_form(b"audience=https://a&resource=https://a").unwrap();
        assert!(TokenRequest::from_params(p).is_err());
    }

    #[test]
    fn content_type_accepts_charset_parameter() {
        assert_eq!(
            BodyFormat::from_content_type(Some("application/x-www-form-urlencoded; charset=UTF-8"))
                .unwrap(),
            BodyFormat::Form
        );
        assert!(BodyFormat::from_content_type(Some("text/plain")).is_err());
        assert!(BodyFormat::from_content_type(None).is_err());
    }
}
