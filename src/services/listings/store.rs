//! `listings.redb`: listings by id, a by-seller index, the users this service has seen deleted
//! or changed (for its reactions), the known sellers (a local copy kept from user events),
//! idempotency records and the outbox.

use super::model::Listing;
use crate::services::get_value;
use crate::store::{StoreError, codec};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

const LISTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("listings");
/// `"<seller_id>/<listing_id>"` → nothing: a seller's listings in creation order.
const BY_SELLER: TableDefinition<&str, ()> = TableDefinition::new("listings_by_seller");
/// user id → the newest user event version applied (reactions are idempotent by version).
const SEEN_USERS: TableDefinition<&str, u64> = TableDefinition::new("seen_users");
/// user id → (version, [`Known`] as a byte): the local copy of sellers, kept from user events.
const KNOWN_SELLERS: TableDefinition<&str, (u64, u8)> = TableDefinition::new("known_sellers");

/// What the user events heard so far say about a seller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Enabled,
    Disabled,
    /// Final: a deleted user's id is never used again.
    Deleted,
}

impl Known {
    fn byte(self) -> u8 {
        match self {
            Known::Enabled => 1,
            Known::Disabled => 2,
            Known::Deleted => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Known> {
        match b {
            1 => Some(Known::Enabled),
            2 => Some(Known::Disabled),
            3 => Some(Known::Deleted),
            _ => None,
        }
    }
}

pub fn init(t: &WriteTransaction) -> Result<(), StoreError> {
    t.open_table(LISTINGS)?;
    t.open_table(BY_SELLER)?;
    t.open_table(SEEN_USERS)?;
    t.open_table(KNOWN_SELLERS)?;
    crate::services::idempotency::init(t)?;
    crate::bus::outbox::init(t)
}

fn seller_key(seller: &str, id: &str) -> String {
    format!("{seller}/{id}")
}

pub fn get(t: &WriteTransaction, id: &str) -> Result<Option<Listing>, StoreError> {
    get_value(&t.open_table(LISTINGS)?, id)
}

pub fn read(t: &ReadTransaction, id: &str) -> Result<Option<Listing>, StoreError> {
    get_value(&t.open_table(LISTINGS)?, id)
}

pub fn put(t: &WriteTransaction, l: &Listing) -> Result<(), StoreError> {
    put_encoded(t, l, &codec::encode(l))
}

/// [`put`] with the value already encoded by [`codec`] (outside the writer thread).
pub fn put_encoded(t: &WriteTransaction, l: &Listing, value: &[u8]) -> Result<(), StoreError> {
    t.open_table(BY_SELLER)?
        .insert(seller_key(&l.seller_id, &l.id).as_str(), ())?;
    t.open_table(LISTINGS)?.insert(l.id.as_str(), value)?;
    Ok(())
}

pub fn remove(t: &WriteTransaction, l: &Listing) -> Result<(), StoreError> {
    t.open_table(BY_SELLER)?
        .remove(seller_key(&l.seller_id, &l.id).as_str())?;
    t.open_table(LISTINGS)?.remove(l.id.as_str())?;
    Ok(())
}

/// Ids of a seller's listings.
pub fn ids_of_seller(t: &WriteTransaction, seller: &str) -> Result<Vec<String>, StoreError> {
    let table = t.open_table(BY_SELLER)?;
    let (from, to) = (format!("{seller}/"), format!("{seller}0"));
    let mut out = Vec::new();
    for row in table.range(from.as_str()..to.as_str())? {
        let (k, _) = row?;
        out.push(k.value().rsplit('/').next().unwrap_or_default().to_string());
    }
    Ok(out)
}

/// Records that user event `version` was applied; false when it (or a newer one) already was.
pub fn see_user(t: &WriteTransaction, user: &str, version: u64) -> Result<bool, StoreError> {
    let mut seen = t.open_table(SEEN_USERS)?;
    let newer = seen
        .get(user)?
        .map(|v| v.value())
        .is_none_or(|v| v < version);
    if newer {
        seen.insert(user, version)?;
    }
    Ok(newer)
}

/// Whether `user`'s deletion has reached this store: its `user.deleted` was applied (its
/// listings archived, `seen_users`) or the copy of sellers heard of it. Asked inside the write
/// transaction of anything that would leave the seller a live listing, so that a create or a
/// re-activation racing the deletion is either refused here or archived by the reaction after
/// it (redb runs one write transaction at a time), never left live.
pub fn seller_deleted(t: &WriteTransaction, user: &str) -> Result<bool, StoreError> {
    if t.open_table(SEEN_USERS)?.get(user)?.is_some() {
        return Ok(true);
    }
    let known = t.open_table(KNOWN_SELLERS)?.get(user)?.map(|v| v.value().1);
    Ok(known.and_then(Known::from_byte) == Some(Known::Deleted))
}

/// What the local copy holds about seller `user`, if anything.
pub fn known_seller(t: &ReadTransaction, user: &str) -> Result<Option<Known>, StoreError> {
    let table = t.open_table(KNOWN_SELLERS)?;
    let row = table.get(user)?;
    Ok(row.and_then(|v| Known::from_byte(v.value().1)))
}

/// Records user event `version` saying `state`; false when it (or a newer one) already was.
pub fn hear_of_seller(
    t: &WriteTransaction,
    user: &str,
    version: u64,
    state: Known,
) -> Result<bool, StoreError> {
    let mut table = t.open_table(KNOWN_SELLERS)?;
    let newer = table
        .get(user)?
        .map(|v| v.value().0)
        .is_none_or(|v| v < version);
    if newer {
        table.insert(user, (version, state.byte()))?;
    }
    Ok(newer)
}

/// Newest first from before id `before`: all listings, or one seller's; filtered by `keep`.
pub fn scan(
    t: &ReadTransaction,
    seller: Option<&str>,
    before: Option<&str>,
    limit: usize,
    keep: impl Fn(&Listing) -> bool,
) -> Result<Vec<Listing>, StoreError> {
    let table = t.open_table(LISTINGS)?;
    let mut out = Vec::new();
    let mut take = |l: Listing| {
        if keep(&l) {
            out.push(l);
        }
        out.len() < limit
    };
    match seller {
        Some(seller) => {
            let index = t.open_table(BY_SELLER)?;
            let from = format!("{seller}/");
            let to = match before {
                Some(b) => seller_key(seller, b),
                None => format!("{seller}0"),
            };
            for row in index.range(from.as_str()..to.as_str())?.rev() {
                let (k, _) = row?;
                let id = k.value().rsplit('/').next().unwrap_or_default().to_string();
                if let Some(l) = get_value::<Listing>(&table, &id)?
                    && !take(l)
                {
                    break;
                }
            }
        }
        None => {
            let rows = match before {
                Some(b) => table.range(..b)?,
                None => table.range::<&str>(..)?,
            };
            for row in rows.rev() {
                let (_, v) = row?;
                if !take(codec::decode(v.value())?) {
                    break;
                }
            }
        }
    }
    Ok(out)
}
