//! Every subject, stream, consumer and service name Souk uses, derived from one prefix so that
//! several installations can share a NATS cluster (`prefix = "shop2"` → `shop2.rpc.…`,
//! `SHOP2_USERS`).

/// The services that publish events, and the aggregates each one owns.
pub const PRODUCERS: &[(&str, &[&str])] = &[
    ("auth", &["account", "token"]),
    ("users", &["user"]),
    ("listings", &["listing"]),
    ("carts", &["cart"]),
    ("orders", &["order"]),
    ("billing", &["invoice", "payment"]),
];

#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `souk.rpc.<service>.<operation>`
    pub fn rpc(&self, service: &str, operation: &str) -> String {
        format!("{}.rpc.{service}.{operation}", self.prefix)
    }

    /// `souk-<service>`: the NATS micro service name (`$SRV.PING` / `INFO` / `STATS`).
    pub fn micro(&self, service: &str) -> String {
        format!("{}-{service}", self.prefix)
    }

    /// `souk.events.<aggregate>.<event>`, from an event type like `user.created`.
    pub fn event(&self, event_type: &str) -> String {
        format!("{}.events.{event_type}", self.prefix)
    }

    /// The part of an event subject after `souk.events.`, i.e. the event type.
    pub fn event_type<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(&self.prefix)?.strip_prefix(".events.")
    }

    /// Every event: `souk.events.>`
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `SOUK_USERS`: the stream of one producing service.
    pub fn stream(&self, service: &str) -> String {
        format!(
            "{}_{}",
            self.prefix.to_uppercase().replace('-', "_"),
            service.to_uppercase()
        )
    }

    /// The subjects a producing service's stream holds.
    pub fn stream_subjects(&self, service: &str) -> Vec<String> {
        PRODUCERS
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, aggs)| {
                aggs.iter()
                    .map(|a| format!("{}.events.{a}.>", self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stream holding events of `aggregate`, e.g. `listing` → `SOUK_LISTINGS`.
    pub fn stream_of_aggregate(&self, aggregate: &str) -> Option<String> {
        PRODUCERS
            .iter()
            .find(|(_, aggs)| aggs.contains(&aggregate))
            .map(|(service, _)| self.stream(service))
    }

    /// `SOUK_DLQ`
    pub fn dlq_stream(&self) -> String {
        format!("{}_DLQ", self.prefix.to_uppercase().replace('-', "_"))
    }

    /// `souk.dlq.<consumer>`
    pub fn dlq(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.prefix)
    }

    pub fn all_dlq(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// Durable consumer names are `<service>-<purpose>`; with a non-default prefix they carry it
    /// too, so installations sharing a cluster never share a consumer.
    pub fn consumer(&self, service: &str, purpose: &str) -> String {
        if self.prefix == "souk" {
            format!("{service}-{purpose}")
        } else {
            format!("{}-{service}-{purpose}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let n = Names::new("souk");
        assert_eq!(n.rpc("users", "create"), "souk.rpc.users.create");
        assert_eq!(n.micro("users"), "souk-users");
        assert_eq!(n.event("user.created"), "souk.events.user.created");
        assert_eq!(
            n.event_type("souk.events.cart.item_added"),
            Some("cart.item_added")
        );
        assert_eq!(n.stream("users"), "SOUK_USERS");
        assert_eq!(
            n.stream_subjects("billing"),
            ["souk.events.invoice.>", "souk.events.payment.>"]
        );
        assert_eq!(
            n.stream_of_aggregate("payment").as_deref(),
            Some("SOUK_BILLING")
        );
        assert_eq!(n.dlq("catalog-listings"), "souk.dlq.catalog-listings");
        assert_eq!(n.consumer("catalog", "listings"), "catalog-listings");
        let other = Names::new("shop-2");
        assert_eq!(other.stream("users"), "SHOP_2_USERS");
        assert_eq!(
            other.consumer("catalog", "listings"),
            "shop-2-catalog-listings"
        );
    }
}
