use crate::distributions::Source;
use crate::paths::MAX_PATHS_PER_INVALIDATION;
use crate::policy::Policy;
use landfall_env::{ConfigError, Env};
use std::collections::HashMap;

/// What the function is told by its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub policy: Policy,
    pub distributions: Source,
    /// Above this many paths per distribution and batch, siblings collapse to `prefix/*`.
    pub wildcard_threshold: usize,
}

/// CloudFront bills per path beyond the free tier; a wildcard counts as one.
pub const DEFAULT_WILDCARD_THRESHOLD: usize = 200;

impl Settings {
    /// `INVALIDATION_POLICY` = `all-changes` (default) | `overwrites-and-deletes`;
    /// `DISTRIBUTIONS` = `bucket=DISTRIBUTIONID[,bucket=ID…]`, or unset to find the
    /// distributions whose origin is the bucket (the role then needs
    /// `cloudfront:ListDistributions` on `*`, which the template does not grant);
    /// `WILDCARD_THRESHOLD` = 1..=3000.
    pub fn from_env(env: &Env) -> Result<Settings, ConfigError> {
        let policy = env.parse_or("INVALIDATION_POLICY", Policy::AllChanges)?;
        let distributions = match env.optional("DISTRIBUTIONS") {
            None => Source::Discover,
            Some(raw) => Source::Fixed(parse_mapping(raw)?),
        };
        let wildcard_threshold = env.parse_or("WILDCARD_THRESHOLD", DEFAULT_WILDCARD_THRESHOLD)?;
        if !(1..=MAX_PATHS_PER_INVALIDATION).contains(&wildcard_threshold) {
            return Err(ConfigError::invalid(
                "WILDCARD_THRESHOLD",
                &wildcard_threshold.to_string(),
                format!("must be between 1 and {MAX_PATHS_PER_INVALIDATION}"),
            ));
        }
        Ok(Settings {
            policy,
            distributions,
            wildcard_threshold,
        })
    }
}

fn parse_mapping(raw: &str) -> Result<HashMap<String, Vec<String>>, ConfigError> {
    let mut mapping: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (bucket, id) = pair
            .split_once('=')
            .map(|(b, i)| (b.trim(), i.trim()))
            .filter(|(b, i)| !b.is_empty() && !i.is_empty())
            .ok_or_else(|| {
                ConfigError::invalid(
                    "DISTRIBUTIONS",
                    raw,
                    format!("{pair:?} is not bucket=DISTRIBUTIONID"),
                )
            })?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::invalid(
                "DISTRIBUTIONS",
                raw,
                format!("{id:?} is not a distribution id"),
            ));
        }
        mapping
            .entry(bucket.to_owned())
            .or_default()
            .push(id.to_owned());
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let settings = Settings::from_env(&Env::default()).unwrap();
        assert_eq!(settings.policy, Policy::AllChanges);
        assert_eq!(settings.distributions, Source::Discover);
        assert_eq!(settings.wildcard_threshold, DEFAULT_WILDCARD_THRESHOLD);
    }

    #[test]
    fn explicit_mapping_and_policy() {
        let env = Env::from_pairs([
            ("DISTRIBUTIONS", "site=E1ABC, site=E2DEF,docs=E3"),
            ("INVALIDATION_POLICY", "overwrites-and-deletes"),
            ("WILDCARD_THRESHOLD", "3000"),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        assert_eq!(settings.policy, Policy::OverwritesAndDeletes);
        let Source::Fixed(map) = settings.distributions else {
            panic!("fixed expected")
        };
        assert_eq!(map["site"], ["E1ABC", "E2DEF"]);
        assert_eq!(map["docs"], ["E3"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("DISTRIBUTIONS", "site"),
            ("DISTRIBUTIONS", "site=E1/../x"),
            ("INVALIDATION_POLICY", "sometimes"),
            ("WILDCARD_THRESHOLD", "3001"),
            ("WILDCARD_THRESHOLD", "0"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
