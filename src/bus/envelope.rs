//! The one event envelope every Souk event travels in, and the request context (who, why,
//! which request) that rides from HTTP through rpc into the events a request causes.

use serde::{Deserialize, Serialize};

/// `{"id":"evt_…","type":"listing.created","aggregate":"listing","aggregate_id":"lst_…",
///   "version":1,"occurred_at":"…","correlation_id":"req_…","causation_id":"evt_…",
///   "actor":"acc_…","data":{…the entity after the change…}}`
///
/// `data` is a `serde_json::Value` unless a reader asks for it typed or left unparsed
/// ([`Envelope::decode_as`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<D = serde_json::Value> {
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
    pub data: D,
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

    /// Encodes a new event of `kind` whose `data` is already JSON (`data_json`, e.g. the
    /// entity's own encoding, which the writer also stores and replies with), without building an
    /// [`Envelope`]: the entity is encoded once instead of into a `serde_json::Value` and again.
    /// Returns the event id and the envelope's JSON, the same fields as [`Envelope::to_json`].
    pub fn encode_with_data(
        kind: &str,
        aggregate_id: &str,
        version: u64,
        data_json: &[u8],
        meta: &Meta,
    ) -> (String, Vec<u8>) {
        #[derive(Serialize)]
        struct Head<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            aggregate: &'a str,
            aggregate_id: &'a str,
            version: u64,
            occurred_at: &'a str,
            correlation_id: Option<&'a str>,
            causation_id: Option<&'a str>,
            actor: &'a str,
        }
        let id = crate::ids::new("evt");
        let head = Head {
            id: &id,
            kind,
            aggregate: kind.split('.').next().unwrap_or(kind),
            aggregate_id,
            version,
            occurred_at: &crate::clock::now_rfc3339(),
            correlation_id: meta.correlation_id.as_deref(),
            causation_id: meta.causation_id.as_deref(),
            actor: meta.actor.as_deref().unwrap_or("system"),
        };
        let mut json = Vec::with_capacity(320 + data_json.len());
        serde_json::to_writer(&mut json, &head).expect("an envelope always serialises");
        // `{…head…}` → `{…head…,"data":<data_json>}`
        json.pop();
        json.extend_from_slice(b",\"data\":");
        json.extend_from_slice(data_json);
        json.push(b'}');
        (id, json)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Decodes and checks an envelope from the bus. Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::decode_as(bytes)
    }

    /// The entity in `data`, typed.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_value(self.data.clone()).map_err(|e| EnvelopeError::Json(e.to_string()))
    }
}

impl<'de, D: Deserialize<'de>> Envelope<D> {
    /// [`Envelope::decode`] with `data` decoded as `D`: a reader that knows its events' types
    /// can skip the `serde_json::Value`, or borrow `data` unparsed (`&RawValue`) and decode it
    /// once it knows the aggregate.
    pub fn decode_as(bytes: &'de [u8]) -> Result<Envelope<D>, EnvelopeError> {
        let e: Envelope<D> =
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
    fn an_event_encoded_with_its_data_reads_like_one_built_whole() {
        let meta = Meta {
            correlation_id: Some("req_1".into()),
            causation_id: None,
            actor: Some("acc_1".into()),
        };
        let data = serde_json::json!({"name": "Ada", "tags": ["a", "\"b\""]});
        let (id, json) = Envelope::encode_with_data(
            "user.created",
            "usr_1",
            3,
            &serde_json::to_vec(&data).unwrap(),
            &meta,
        );
        let e = Envelope::decode(&json).unwrap();
        let mut whole = Envelope::new("user.created", "usr_1", 3, &data, &meta);
        (whole.id, whole.occurred_at) = (id, e.occurred_at.clone());
        assert_eq!(e, whole);
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
