//! Listings commands, each inside one store transaction with its event.

use super::error::ListingError;
use super::model::*;
use super::store;
use crate::bus::rpc::FieldError;
use crate::bus::{Envelope, Meta, Names, outbox};
use crate::services::check_version;
use crate::services::idempotency::{Replay, fingerprint, idempotency_key, remember, replay};
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

/// The idempotency record's key (per caller) and the request's fingerprint, when the create
/// sent an `Idempotency-Key`.
pub fn idempotency(req: &CreateRequest, meta: &Meta) -> Option<(String, String)> {
    req.idempotency_key.as_ref().map(|k| {
        (
            idempotency_key("listings.create", meta, k),
            fingerprint(&req.listing),
        )
    })
}

/// A replayed create: the first reply, the first refusal, or an error when the key was reused
/// for another body.
pub fn replayed(
    t: &WriteTransaction,
    idempotency: Option<&(String, String)>,
) -> Result<Option<Listing>, ListingError> {
    let Some((key, print)) = idempotency else {
        return Ok(None);
    };
    match replay(t, key, print)? {
        Replay::New => Ok(None),
        Replay::Reply(reply) => serde_json::from_value(reply)
            .map(Some)
            .map_err(|_| ListingError::IdempotencyKeyReused),
        Replay::Refused(e) => Err(ListingError::Replayed(e)),
        Replay::KeyReused => Err(ListingError::IdempotencyKeyReused),
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
        idempotency: idempotency(req, meta),
    }
}

/// Commits a prepared create; answers the listing's JSON (the first reply for a replay).
pub fn create(t: &WriteTransaction, new: &NewListing) -> Result<Vec<u8>, ListingError> {
    if let Some(first) = replayed(t, new.idempotency.as_ref())? {
        return Ok(serde_json::to_vec(&first).expect("a listing always serialises"));
    }
    // The seller was checked before this transaction; their deletion may have landed since.
    if store::seller_deleted(t, &new.listing.seller_id)? {
        return Err(ListingError::UnknownSeller);
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
    // A listing whose stock reaches 0 is sold. Making a listing with no stock active again is
    // an error rather than a silent no-op (an active one that sells out just becomes sold).
    if f.quantity == 0 && f.status == "active" {
        if p.status.as_deref() == Some("active") && before.status != "active" {
            return Err(ListingError::Invalid(vec![FieldError {
                field: "status".into(),
                message: "a listing with quantity 0 cannot be made active; raise quantity too"
                    .into(),
            }]));
        }
        f.status = "sold".into();
    }
    // A deleted seller's listings stay archived (their deletion archived them).
    let live = |s: &str| s == "active" || s == "reserved";
    if live(&f.status) && !live(&before.status) && store::seller_deleted(t, &before.seller_id)? {
        return Err(ListingError::UnknownSeller);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::listings::store::Known;

    /// An empty `listings.redb` in a temporary directory (kept alive by the first value).
    fn empty_store() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("listings.redb")).unwrap();
        (dir, db)
    }

    fn create_for(
        t: &WriteTransaction,
        names: &Names,
        seller: &str,
    ) -> Result<Listing, ListingError> {
        let req = CreateRequest {
            listing: CreateListing {
                seller_id: seller.into(),
                title: "Bike".into(),
                listing_type: "sale".into(),
                price: 1999,
                description: None,
                currency: None,
                quantity: None,
            },
            idempotency_key: None,
        };
        let f = new_fields(&req.listing)?;
        let new = prepare_create(names, &req, f, &Meta::default());
        create(t, &new)?;
        Ok(new.listing)
    }

    fn reactivate(t: &WriteTransaction, names: &Names, id: &str) -> Result<Listing, ListingError> {
        let req = PatchRequest {
            id: id.into(),
            expected_version: None,
            patch: PatchListing {
                status: Some("active".into()),
                ..Default::default()
            },
        };
        patch(t, names, req, &Meta::default())
    }

    /// A create or re-activation that passed the seller check before the seller's deletion
    /// reached this store is refused in its own transaction, so none is left live.
    #[test]
    fn a_deleted_seller_gets_no_live_listing_whatever_the_order() {
        let (_dir, db) = empty_store();
        let names = Names::new("souk");
        let t = db.begin_write().unwrap();
        store::init(&t).unwrap();
        let (gone, copied_gone, alive) = (
            crate::ids::new("usr"),
            crate::ids::new("usr"),
            crate::ids::new("usr"),
        );
        let before = create_for(&t, &names, &gone).unwrap();
        let deleted = Envelope::new("user.deleted", &gone, 2, (), &Meta::default());
        assert_eq!(archive_seller(&t, &names, &deleted).unwrap(), 1);

        // The reaction ran first: a create and a re-activation are refused.
        assert!(matches!(
            create_for(&t, &names, &gone),
            Err(ListingError::UnknownSeller)
        ));
        assert!(matches!(
            reactivate(&t, &names, &before.id),
            Err(ListingError::UnknownSeller)
        ));
        assert_eq!(
            store::get(&t, &before.id).unwrap().unwrap().status,
            "archived"
        );
        // Only the copy of sellers has heard of the deletion yet: refused too.
        store::hear_of_seller(&t, &copied_gone, 3, Known::Deleted).unwrap();
        assert!(matches!(
            create_for(&t, &names, &copied_gone),
            Err(ListingError::UnknownSeller)
        ));
        // Other sellers are not affected, and their archived listings may come back.
        let kept = create_for(&t, &names, &alive).unwrap();
        let archived = PatchRequest {
            id: kept.id.clone(),
            expected_version: None,
            patch: PatchListing {
                status: Some("archived".into()),
                ..Default::default()
            },
        };
        patch(&t, &names, archived, &Meta::default()).unwrap();
        assert_eq!(reactivate(&t, &names, &kept.id).unwrap().status, "active");
    }

    #[test]
    fn active_with_no_stock_is_refused_not_ignored() {
        let (_dir, db) = empty_store();
        let names = Names::new("souk");
        let t = db.begin_write().unwrap();
        store::init(&t).unwrap();
        let l = create_for(&t, &names, &crate::ids::new("usr")).unwrap();
        let sell_out = |status: Option<&str>| PatchRequest {
            id: l.id.clone(),
            expected_version: None,
            patch: PatchListing {
                quantity: Some(0),
                status: status.map(str::to_string),
                ..Default::default()
            },
        };
        // An active listing whose stock reaches 0 is sold, whatever status the form re-sent.
        let sold = patch(&t, &names, sell_out(Some("active")), &Meta::default()).unwrap();
        assert_eq!((sold.status.as_str(), sold.version), ("sold", 2));
        // Making it active again without stock is refused, not ignored.
        match reactivate(&t, &names, &l.id) {
            Err(ListingError::Invalid(errors)) => assert_eq!(errors[0].field, "status"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store::get(&t, &l.id).unwrap().unwrap().version, 2);
        assert_eq!(
            patch(&t, &names, sell_out(None), &Meta::default())
                .unwrap()
                .version,
            2,
            "an unchanged patch writes nothing"
        );
    }
}
