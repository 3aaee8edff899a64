//! The listing page of the public BFF API (the reference gateway's `GET /public/listings`):
//! newest first, page-numbered, each listing with its user.

use super::store::{Db, sqlite_error};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageRequest {
    pub page_num: u32,
    pub page_size: u32,
    pub user_id: Option<String>,
}

/// A row of the page; times are RFC 3339 here, the gateway turns them into microseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub listing_type: String,
    pub price: i64,
    pub created_at: String,
    pub updated_at: String,
    pub user_id: String,
    pub user_name: String,
    pub user_created_at: String,
    pub user_updated_at: String,
}

pub fn page(db: &Db, req: &PageRequest) -> Result<Vec<Row>, StoreError> {
    let size = req.page_size.max(1) as i64;
    let offset = (req.page_num.max(1) as i64 - 1) * size;
    db.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT i.id, i.listing_type, i.price, i.created_at, i.updated_at, i.seller_id,
                        i.seller_name, coalesce(s.created_at, ''), coalesce(s.updated_at, '')
                 FROM items i LEFT JOIN sellers s ON s.id = i.seller_id
                 WHERE i.hidden = 0 AND (?1 IS NULL OR i.seller_id = ?1)
                 ORDER BY i.id DESC LIMIT ?2 OFFSET ?3",
            )
            .map_err(|e| sqlite_error(&db.path(), "reading the public page", e))?;
        let rows = stmt
            .query_map(rusqlite::params![req.user_id, size, offset], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    listing_type: r.get(1)?,
                    price: r.get(2)?,
                    created_at: r.get(3)?,
                    updated_at: r.get(4)?,
                    user_id: r.get(5)?,
                    user_name: r.get(6)?,
                    user_created_at: r.get(7)?,
                    user_updated_at: r.get(8)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| sqlite_error(&db.path(), "reading the public page", e))?;
        Ok(rows)
    })
}
