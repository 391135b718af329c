//! Deserializers of the config's values: strings with `${VAR}` expanded, weights, ports,
//! durations, and one-or-many lists of keys.

use super::env;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// A string from the config with `${VAR}` / `${VAR:-default}` already expanded.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvString {
    value: String,
    template: Option<String>,
}

impl EnvString {
    /// The expanded value.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text as written, when it contained a variable (for warnings such as "`${OPENAI_API_KEY}`
    /// expands to empty").
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }
}

impl fmt::Debug for EnvString {
    // Values may be secrets: show only the template or the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.template {
            Some(t) => write!(f, "EnvString({t:?})"),
            None => write!(f, "EnvString(<{} chars>)", self.value.chars().count()),
        }
    }
}

impl From<&str> for EnvString {
    fn from(value: &str) -> Self {
        Self {
            value: value.to_string(),
            template: None,
        }
    }
}

impl From<String> for EnvString {
    fn from(value: String) -> Self {
        Self {
            value,
            template: None,
        }
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let value =
            env::expand(&raw, |name| std::env::var(name).ok()).map_err(de::Error::custom)?;
        let template = raw.contains("${").then_some(raw);
        Ok(Self { value, template })
    }
}

/// A model's weight: a finite number >= 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight(pub f64);

impl Default for Weight {
    fn default() -> Self {
        Self(1.0)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number >= 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                Ok(Weight(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Weight, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Weight(v))
                } else {
                    Err(E::custom(format!("weight must be a number >= 0, got {v}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    /// A number, or a string such as `"${PORT:-8080}"` that expands to one.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(i64),
        Text(EnvString),
    }
    let v = match Written::deserialize(d)? {
        Written::Number(n) => n,
        Written::Text(t) => t.as_str().trim().parse::<i64>().map_err(|_| {
            de::Error::custom(format!(
                "port must be a number between 1 and 65535, got '{}'{}",
                t.as_str(),
                t.template()
                    .map(|t| format!(" (from {t})"))
                    .unwrap_or_default()
            ))
        })?,
    };
    if (1..=65535).contains(&v) {
        Ok(Some(v as u16))
    } else {
        Err(de::Error::custom(format!(
            "port must be between 1 and 65535, got {v}"
        )))
    }
}

/// Durations: `"30s"`, `"500ms"`, `"2m"`, or a number of seconds.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"30s\" or \"500ms\", or a number of seconds")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|e| E::custom(format!("bad duration {v}: {e}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v)
                .map_err(|e| E::custom(format!("bad duration \"{v}\": {e}")))
        }
    }
    d.deserialize_any(V)
}

/// A list of strings, or one string as a list of one. Errors never show the value (keys).
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvString>, D::Error> {
    let keys: Vec<KeyText> = list_of_keys(d)?;
    Ok(keys.into_iter().map(|k| k.0).collect())
}

/// A provider's keys: a list of keys, each a string or `{key, rpm, tpm}`, or one string as a
/// list of one. Errors never show a key.
pub(super) fn provider_keys<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<super::ProviderKey>, D::Error> {
    list_of_keys(d)
}

/// A list of `T`, or one string as a list of one; a map in place of the list is refused
/// without showing it.
fn list_of_keys<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + From<EnvString>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + From<EnvString>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a key or a list of keys")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            EnvString::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|s| vec![s.into()])
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = seq.next_element::<T>()? {
                out.push(key);
            }
            Ok(out)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom(
                "expected a key or a list of keys, found a map (the value is not shown: it may be a secret)",
            ))
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

impl From<EnvString> for KeyText {
    fn from(key: EnvString) -> Self {
        KeyText(key)
    }
}

impl From<EnvString> for super::ProviderKey {
    fn from(key: EnvString) -> Self {
        super::ProviderKey {
            key,
            oauth: None,
            rpm: None,
            tpm: None,
            disabled: false,
        }
    }
}

impl<'de> Deserialize<'de> for super::ProviderKey {
    /// A key as text ([`KeyText`]'s rules), or a map of `key` and its own `rpm` / `tpm` /
    /// `disabled`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Written {
            #[serde(default)]
            key: Option<KeyText>,
            #[serde(default)]
            oauth: Option<super::OAuthConfig>,
            #[serde(default)]
            rpm: Option<u64>,
            #[serde(default)]
            tpm: Option<u64>,
            #[serde(default)]
            disabled: bool,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = super::ProviderKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key as a string, or {key or oauth, rpm, tpm, disabled}")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let w = Written::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let key = match (w.key, &w.oauth) {
                    (Some(_), Some(_)) => {
                        return Err(de::Error::custom(
                            "a key has either `key` or `oauth`, not both",
                        ))
                    }
                    (None, None) => return Err(de::Error::missing_field("key")),
                    (key, _) => key.map(|k| k.0).unwrap_or_default(),
                };
                Ok(super::ProviderKey {
                    key,
                    oauth: w.oauth,
                    rpm: w.rpm,
                    tpm: w.tpm,
                    disabled: w.disabled,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                KeyText::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|k| k.0.into())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                KeyText::deserialize(de::value::U64Deserializer::<E>::new(v)).map(|k| k.0.into())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                KeyText::deserialize(de::value::I64Deserializer::<E>::new(v)).map(|k| k.0.into())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                KeyText::deserialize(de::value::F64Deserializer::<E>::new(v)).map(|k| k.0.into())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                KeyText::deserialize(de::value::BoolDeserializer::<E>::new(v)).map(|k| k.0.into())
            }
        }
        d.deserialize_any(V)
    }
}

/// One key of a list: text only, so a number or a map in a list of keys is a type error rather
/// than a key made of its digits. The value is never shown.
struct KeyText(EnvString);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                EnvString::deserialize(de::value::StrDeserializer::<E>::new(v)).map(KeyText)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyText, E> {
                Err(E::custom(
                    "a key must be a string, found a number (quote it)",
                ))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyText, E> {
                Err(E::custom(
                    "a key must be a string, found a number (quote it)",
                ))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyText, E> {
                Err(E::custom(
                    "a key must be a string, found a number (quote it)",
                ))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyText, E> {
                Err(E::custom(
                    "a key must be a string, found a boolean (quote it)",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// One key, as text only (see [`KeyText`]).
pub(super) fn one_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EnvString>, D::Error> {
    Option::<KeyText>::deserialize(d).map(|k| k.map(|k| k.0))
}

pub(super) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}
