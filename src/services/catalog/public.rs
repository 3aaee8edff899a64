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

/// The page's columns, from `items` (`i`) and its seller's row (`s`, outer-joined).
const COLUMNS: &str = "i.id, i.listing_type, i.price, i.created_at, i.updated_at, i.seller_id, \
                       i.seller_name, coalesce(s.created_at, ''), coalesce(s.updated_at, '')";

/// One seller's visible listings, newest first, read in order from `items_seller_status`
/// (seller, hidden, status, id): one index range per status, merged by SQLite (`MERGE (UNION
/// ALL)`), so a page costs what it skips and shows, not what the seller has. With the status
/// left out, the planner walked every listing by id and kept the seller's (~65 ms on 300k rows
/// for a seller with a handful), or sorted all of a big seller's rows.
fn seller_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let arms: Vec<String> = crate::services::listings::model::STATUSES
            .iter()
            .map(|status| {
                format!(
                    "SELECT {COLUMNS} FROM items i LEFT JOIN sellers s ON s.id = i.seller_id \
                     WHERE i.seller_id = ?1 AND i.hidden = 0 AND i.status = '{status}'"
                )
            })
            .collect();
        format!(
            "{} ORDER BY 1 DESC LIMIT ?2 OFFSET ?3",
            arms.join(" UNION ALL ")
        )
    })
}

/// Every visible listing, newest first: the primary key's index walked backwards. The `+` keeps
/// `hidden` from choosing `items_status_id` instead, which sorted every visible listing.
fn all_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM items i LEFT JOIN sellers s ON s.id = i.seller_id \
             WHERE +i.hidden = 0 ORDER BY i.id DESC LIMIT ?1 OFFSET ?2"
        )
    })
}

pub fn page(db: &Db, req: &PageRequest) -> Result<Vec<Row>, StoreError> {
    let size = req.page_size.max(1) as i64;
    let offset = (req.page_num.max(1) as i64 - 1) * size;
    db.read(|c| {
        let err = |e| sqlite_error(&db.path(), "reading the public page", e);
        let (sql, params): (&str, &[&dyn rusqlite::ToSql]) = match &req.user_id {
            Some(seller) => (seller_sql(), &[seller, &size, &offset]),
            None => (all_sql(), &[&size, &offset]),
        };
        let mut stmt = c.prepare_cached(sql).map_err(err)?;
        let rows = stmt
            .query_map(params, |r| {
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
            .map_err(err)?;
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::catalog::projector::apply_batch;
    use crate::services::catalog::query::tests::{Rng, events, strings};

    /// The same page by the plain statement: every visible listing, filtered and sorted.
    fn plain(db: &Db, req: &PageRequest) -> Vec<String> {
        let size = req.page_size as i64;
        let offset = (req.page_num as i64 - 1) * size;
        let sql = "SELECT id FROM items WHERE hidden = 0 AND (?1 IS NULL OR seller_id = ?1)
                   ORDER BY id DESC LIMIT ?2 OFFSET ?3";
        strings(
            &db.current(),
            sql,
            rusqlite::params![req.user_id, size, offset],
            0,
        )
    }

    /// Every page, with and without a seller, holds what the plain statement finds, in its
    /// order (sellers' listings in every status, some hidden, some deleted with their seller);
    /// and a seller's page is read from the seller's index, never by walking every listing.
    #[test]
    fn pages_are_the_newest_visible_listings_read_by_seller() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let g = db.current();
        let batch: Vec<_> = events(&mut Rng(0xb0ff), 600)
            .iter()
            .map(|(e, stream, seq)| (e.into(), stream.clone(), *seq))
            .collect();
        assert!(apply_batch(&g, &batch).unwrap().iter().all(Result::is_ok));
        let mut sellers: Vec<Option<String>> = (0..6).map(|s| Some(format!("usr_{s}"))).collect();
        sellers.push(None);
        for user_id in sellers {
            for page_size in [1, 7, 100] {
                let mut seen = 0;
                for page_num in 1.. {
                    let req = PageRequest {
                        page_num,
                        page_size,
                        user_id: user_id.clone(),
                    };
                    let rows = page(&db, &req).unwrap();
                    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                    assert_eq!(ids, plain(&db, &req), "{req:?}");
                    assert!(
                        rows.iter()
                            .all(|r| user_id.as_ref().is_none_or(|u| &r.user_id == u))
                    );
                    seen += rows.len();
                    if rows.is_empty() {
                        break;
                    }
                }
                if user_id.is_none() && page_size == 100 {
                    assert!(seen > 300, "{seen} visible listings");
                }
            }
        }
        let statuses = strings(
            &g,
            "SELECT DISTINCT status FROM items WHERE hidden = 0",
            [],
            0,
        );
        assert_eq!(
            statuses.len(),
            4,
            "every status is on some page: {statuses:?}"
        );

        let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
            strings(&g, &format!("EXPLAIN QUERY PLAN {sql}"), params, 3)
        };
        let sorts = |plan: &[String]| plan.iter().any(|step| step.contains("TEMP B-TREE"));
        let seller = plan(seller_sql(), rusqlite::params!["usr_1", 10, 0]);
        assert!(
            seller.iter().any(|step| step.contains("MERGE"))
                && !seller.iter().any(|step| step.contains("SCAN"))
                && !sorts(&seller),
            "{seller:#?}"
        );
        let all = plan(all_sql(), rusqlite::params![10, 0]);
        assert!(!sorts(&all), "{all:#?}");
    }
}
