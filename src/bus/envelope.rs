//! The one event envelope every Souk event travels in, and the request context (who, why,
//! which request) that rides from HTTP through rpc into the events a request causes.

use serde::{Deserialize, Serialize};

/// `{"id":"evt_…","type":"listing.created","aggregate":"listing","aggregate_id":"lst_…",
///   "version":1,"occurred_at":"…","correlation_id":"req_…","causation_id":"evt_…",
///   "actor":"acc_…","data":{…the entity after the change…}}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub aggregate: String,
    pub aggregate_id: String,
    pub version: u64,
    pub occurred_at: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub actor: String,
    pub data: serde_json::Value,
}

/// Who asked, and which request or event led here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The request id (`X-Request-Id`), carried by every event the request causes.
    pub correlation_id: Option<String>,
    /// The event that caused this one, for Souk's own reactions.
    pub causation_id: Option<String>,
    /// The account or API token behind the change; `system` for Souk's own reactions.
    pub actor: Option<String>,
}

impl Meta {
    /// The context of a reaction to `event`: same correlation, caused by it, done by `system`.
    pub fn caused_by(event: &Envelope) -> Meta {
        Meta {
            correlation_id: event.correlation_id.clone(),
            causation_id: Some(event.id.clone()),
            actor: Some("system".to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("not a JSON event envelope: {0}")]
    Json(String),
    #[error("invalid event envelope: {0}")]
    Invalid(&'static str),
}

impl Envelope {
    /// A new event of `kind` (e.g. `user.created`) about `aggregate_id` at `version`.
    pub fn new(
        kind: &str,
        aggregate_id: &str,
        version: u64,
        data: impl Serialize,
        meta: &Meta,
    ) -> Envelope {
        let aggregate = kind.split('.').next().unwrap_or(kind).to_string();
        Envelope {
            id: crate::ids::new("evt"),
            kind: kind.to_string(),
            aggregate,
            aggregate_id: aggregate_id.to_string(),
            version,
            occurred_at: crate::clock::now_rfc3339(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            actor: meta.actor.clone().unwrap_or_else(|| "system".to_string()),
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Decodes and checks an envelope from the bus. Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let e: Envelope =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        if !e.id.starts_with("evt_") {
            return Err(EnvelopeError::Invalid("id must start with evt_"));
        }
        match e.kind.split_once('.') {
            Some((agg, ev)) if agg == e.aggregate && !ev.is_empty() => {}
            _ => return Err(EnvelopeError::Invalid("type must be <aggregate>.<event>")),
        }
        if e.aggregate_id.is_empty() {
            return Err(EnvelopeError::Invalid("aggregate_id is empty"));
        }
        if e.version == 0 {
            return Err(EnvelopeError::Invalid("version starts at 1"));
        }
        Ok(e)
    }

    /// The entity in `data`, typed.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_value(self.data.clone()).map_err(|e| EnvelopeError::Json(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_carries_the_context() {
        let meta = Meta {
            correlation_id: Some("req_1".into()),
            causation_id: None,
            actor: Some("acc_1".into()),
        };
        let e = Envelope::new(
            "user.created",
            "usr_1",
            1,
            serde_json::json!({"name": "Ada"}),
            &meta,
        );
        assert_eq!(e.aggregate, "user");
        let back = Envelope::decode(&e.to_json()).unwrap();
        assert_eq!(back, e);
        let reaction = Meta::caused_by(&e);
        assert_eq!(reaction.causation_id.as_deref(), Some(e.id.as_str()));
        assert_eq!(reaction.correlation_id.as_deref(), Some("req_1"));
        assert_eq!(reaction.actor.as_deref(), Some("system"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [&b""[..], b"{", b"null", b"[]", b"{\"id\":1}", &[0xff, 0xfe]] {
            assert!(Envelope::decode(bad).is_err());
        }
        let mut e = Envelope::new("user.created", "usr_1", 1, (), &Meta::default());
        e.version = 0;
        assert_eq!(
            Envelope::decode(&e.to_json()),
            Err(EnvelopeError::Invalid("version starts at 1"))
        );
        e.version = 1;
        e.aggregate = "listing".into();
        assert!(Envelope::decode(&e.to_json()).is_err());
    }
}
