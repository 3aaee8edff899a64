//! Listings commands, each inside one store transaction with its event.

use super::error::ListingError;
use super::model::*;
use super::store;
use crate::bus::{Envelope, Meta, Names, outbox};
use crate::services::{check_version, fingerprint, remember, replay};
use redb::WriteTransaction;

fn emit(
    t: &WriteTransaction,
    names: &Names,
    kind: &str,
    l: &Listing,
    meta: &Meta,
) -> Result<(), ListingError> {
    outbox::append(t, names, &Envelope::new(kind, &l.id, l.version, l, meta))?;
    Ok(())
}

fn load(t: &WriteTransaction, id: &str, expected: Option<u64>) -> Result<Listing, ListingError> {
    let l = store::get(t, id)?.ok_or(ListingError::NotFound)?;
    check_version(expected, l.version).map_err(|current| ListingError::Stale {
        expected: expected.unwrap_or(0),
        current,
    })?;
    Ok(l)
}

/// The idempotency record's key and the request's fingerprint, when the create sent a key.
pub fn idempotency(req: &CreateRequest) -> Option<(String, String)> {
    req.idempotency_key
        .as_ref()
        .map(|k| (format!("listings.create:{k}"), fingerprint(&req.listing)))
}

/// A replayed create: the first reply, or an error when the key was reused for another body.
pub fn replayed(
    t: &WriteTransaction,
    idempotency: Option<&(String, String)>,
) -> Result<Option<Listing>, ListingError> {
    let Some((key, print)) = idempotency else {
        return Ok(None);
    };
    match replay(t, key, print)? {
        Ok(None) => Ok(None),
        Ok(Some(reply)) => serde_json::from_value(reply)
            .map(Some)
            .map_err(|_| ListingError::IdempotencyKeyReused),
        Err(()) => Err(ListingError::IdempotencyKeyReused),
    }
}

/// The validated fields of a new listing (checked before the seller is looked up).
pub fn new_fields(c: &CreateListing) -> Result<Fields, ListingError> {
    validate(
        Fields {
            title: c.title.clone(),
            description: c.description.clone().unwrap_or_default(),
            listing_type: c.listing_type.clone(),
            price: c.price,
            currency: c.currency.clone().unwrap_or_else(|| "USD".into()),
            quantity: c.quantity.unwrap_or(1),
            status: "active".into(),
        },
        true,
    )
    .map_err(ListingError::Invalid)
}

/// A create made ready before its transaction: the listing encoded once (the stored value, the
/// event's `data` and the reply are the same JSON) and its outbox record. Building it on the
/// request's task leaves only inserts to the store's one writer thread, which every write to
/// `listings.redb` queues for.
pub struct NewListing {
    listing: Listing,
    json: Vec<u8>,
    event: outbox::Prepared,
    idempotency: Option<(String, String)>,
}

/// Builds the listing of a create whose fields `f` were validated and whose seller was checked.
pub fn prepare_create(names: &Names, req: &CreateRequest, f: Fields, meta: &Meta) -> NewListing {
    let now = crate::clock::now_rfc3339();
    let l = Listing {
        id: crate::ids::new("lst"),
        seller_id: req.listing.seller_id.clone(),
        title: f.title,
        description: f.description,
        listing_type: f.listing_type,
        price: f.price,
        currency: f.currency,
        quantity: f.quantity,
        status: f.status,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    let json = serde_json::to_vec(&l).expect("a listing always serialises");
    let (event_id, event) =
        Envelope::encode_with_data("listing.created", &l.id, l.version, &json, meta);
    NewListing {
        event: outbox::prepare(names, "listing.created", &event_id, event),
        listing: l,
        json,
        idempotency: idempotency(req),
    }
}

/// Commits a prepared create; answers the listing's JSON (the first reply for a replay).
pub fn create(t: &WriteTransaction, new: &NewListing) -> Result<Vec<u8>, ListingError> {
    if let Some(first) = replayed(t, new.idempotency.as_ref())? {
        return Ok(serde_json::to_vec(&first).expect("a listing always serialises"));
    }
    store::put_encoded(
        t,
        &new.listing,
        &crate::store::codec::encode_json(&new.json),
    )?;
    outbox::append_prepared(t, &new.event)?;
    if let Some((key, print)) = &new.idempotency {
        remember(t, key, print.clone(), &new.listing)?;
    }
    Ok(new.json.clone())
}

pub fn patch(
    t: &WriteTransaction,
    names: &Names,
    req: PatchRequest,
    meta: &Meta,
) -> Result<Listing, ListingError> {
    let before = load(t, &req.id, req.expected_version)?;
    let p = req.patch;
    let mut f = validate(
        Fields {
            title: p.title.unwrap_or_else(|| before.title.clone()),
            description: p.description.unwrap_or_else(|| before.description.clone()),
            listing_type: before.listing_type.clone(),
            price: p.price.unwrap_or(before.price),
            currency: before.currency.clone(),
            quantity: p.quantity.unwrap_or(before.quantity),
            status: p.status.clone().unwrap_or_else(|| before.status.clone()),
        },
        false,
    )
    .map_err(ListingError::Invalid)?;
    // A listing whose stock reaches 0 is sold.
    if f.quantity == 0 && f.status == "active" {
        f.status = "sold".into();
    }
    let unchanged = f.title == before.title
        && f.description == before.description
        && f.price == before.price
        && f.quantity == before.quantity
        && f.status == before.status;
    if unchanged {
        return Ok(before);
    }
    let l = Listing {
        title: f.title,
        description: f.description,
        price: f.price,
        quantity: f.quantity,
        status: f.status,
        updated_at: crate::clock::now_rfc3339(),
        version: before.version + 1,
        ..before
    };
    store::put(t, &l)?;
    emit(t, names, "listing.updated", &l, meta)?;
    Ok(l)
}

pub fn delete(
    t: &WriteTransaction,
    names: &Names,
    req: IdRequest,
    meta: &Meta,
) -> Result<(), ListingError> {
    let before = load(t, &req.id, req.expected_version)?;
    store::remove(t, &before)?;
    let last = Listing {
        updated_at: crate::clock::now_rfc3339(),
        version: before.version + 1,
        ..before
    };
    emit(t, names, "listing.deleted", &last, meta)
}

/// Reaction to `user.deleted`: archive the seller's active and reserved listings, one
/// `listing.updated` each. Idempotent: a replayed or older user event changes nothing.
pub fn archive_seller(
    t: &WriteTransaction,
    names: &Names,
    user_event: &Envelope,
) -> Result<usize, ListingError> {
    if !store::see_user(t, &user_event.aggregate_id, user_event.version)? {
        return Ok(0);
    }
    let meta = Meta::caused_by(user_event);
    let mut archived = 0;
    for id in store::ids_of_seller(t, &user_event.aggregate_id)? {
        let Some(before) = store::get(t, &id)? else {
            continue;
        };
        if before.status != "active" && before.status != "reserved" {
            continue;
        }
        let l = Listing {
            status: "archived".into(),
            updated_at: crate::clock::now_rfc3339(),
            version: before.version + 1,
            ..before
        };
        store::put(t, &l)?;
        emit(t, names, "listing.updated", &l, &meta)?;
        archived += 1;
    }
    Ok(archived)
}
