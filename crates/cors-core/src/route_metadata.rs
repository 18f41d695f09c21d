//! Policies carried in a route's metadata (`filter_metadata.<namespace>`), as Envoy hands them
//! to a filter: `xds.route_metadata`, an `envoy.config.core.v3.Metadata` in protobuf bytes.
//! Decoded once per distinct route config and remembered; an invalid policy turns CORS off on
//! its route (a route's metadata cannot be refused at load: the filter sees it only when a
//! request reaches the route).

use crate::policy::Policy;
use crate::structpb;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Distinct route-metadata blobs remembered at most; past it the cache starts over.
const CACHE_LIMIT: usize = 4096;

/// What a route's metadata says about its policy.
#[derive(Debug, Clone)]
pub enum MetadataPolicy {
    /// No policy in our namespace: the plugin configuration decides.
    Absent,
    Policy(Arc<Policy>),
    /// The policy is invalid: CORS is off on that route. The error, as logged.
    Invalid(Arc<str>),
}

/// A freshly decoded policy, and what to log about it (once per distinct metadata).
pub struct Decoded {
    pub policy: MetadataPolicy,
    pub warnings: Vec<String>,
}

/// Reads the policy in `filter_metadata.<namespace>` of serialized route metadata.
pub fn decode(metadata: &[u8], namespace: &str) -> Decoded {
    let path = format!("route metadata filter_metadata.{namespace}");
    let mut warnings = Vec::new();
    let policy = match structpb::filter_metadata(metadata, namespace) {
        Ok(None) => MetadataPolicy::Absent,
        Ok(Some(value)) => match Policy::from_json(&value, &path, &mut warnings) {
            Ok(policy) => MetadataPolicy::Policy(Arc::new(policy)),
            Err(e) => MetadataPolicy::Invalid(
                format!("invalid policy, CORS is off on this route: {e}").into(),
            ),
        },
        Err(e) => MetadataPolicy::Invalid(
            format!("unreadable {path}, CORS is off on this route: {e}").into(),
        ),
    };
    Decoded { policy, warnings }
}

/// Route metadata bytes → the policy decoded from them. One per worker (a Wasm VM, a native
/// worker thread): not shared across threads.
#[derive(Default)]
pub struct MetadataCache {
    policies: RefCell<HashMap<Vec<u8>, MetadataPolicy>>,
}

impl MetadataCache {
    /// The remembered policy for `metadata`, or `None` on the first sight of these bytes.
    pub fn get(&self, metadata: &[u8]) -> Option<MetadataPolicy> {
        self.policies.borrow().get(metadata).cloned()
    }

    pub fn insert(&self, metadata: Vec<u8>, policy: MetadataPolicy) {
        let mut policies = self.policies.borrow_mut();
        if policies.len() >= CACHE_LIMIT {
            policies.clear();
        }
        policies.insert(metadata, policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structpb::encode::encode_metadata;
    use serde_json::json;

    #[test]
    fn a_valid_policy_an_invalid_one_and_none_are_told_apart() {
        let ok = encode_metadata("cors", &json!({"allow_origins": ["https://a.com"]}));
        assert!(
            matches!(decode(&ok, "cors").policy, MetadataPolicy::Policy(p) if p.name.ends_with("filter_metadata.cors"))
        );
        assert!(matches!(
            decode(&ok, "other").policy,
            MetadataPolicy::Absent
        ));
        let bad = encode_metadata("cors", &json!({"allow_origins": ["not an origin"]}));
        let MetadataPolicy::Invalid(e) = decode(&bad, "cors").policy else {
            panic!("an invalid policy must be Invalid");
        };
        assert!(
            e.starts_with("invalid policy, CORS is off on this route: route metadata filter_metadata.cors.allow_origins[0]"),
            "{e}"
        );
        assert!(
            matches!(decode(b"\x0a\xff", "cors").policy, MetadataPolicy::Invalid(e) if e.starts_with("unreadable"))
        );
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let cache = MetadataCache::default();
        for i in 0..CACHE_LIMIT {
            cache.insert(i.to_le_bytes().to_vec(), MetadataPolicy::Absent);
        }
        assert!(cache.get(&0usize.to_le_bytes()).is_some());
        cache.insert(b"new".to_vec(), MetadataPolicy::Absent);
        assert!(cache.get(&0usize.to_le_bytes()).is_none());
        assert!(cache.get(b"new").is_some());
    }
}
