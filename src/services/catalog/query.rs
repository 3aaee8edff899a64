//! Catalog queries: full text (FTS5, diacritics-insensitive, each word a prefix), filters, four
//! sort orders with keyset cursors (relevance pages by offset), and the total count.
//!
//! User text never reaches SQL or FTS syntax: it is split into words and each word is quoted,
//! so `"`, `*`, `NEAR(` or `'; DROP` are just text.

use super::store::Db;
use crate::services::{decode_cursor, encode_cursor};
use crate::store::StoreError;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// `GET /api/catalog` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub q: Option<String>,
    pub seller_id: Option<String>,
    pub listing_type: Option<String>,
    pub status: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seller {
    pub id: String,
    pub name: String,
}

/// A listing as the catalog shows it: the Listing fields plus its seller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogItem {
    pub id: String,
    pub seller_id: String,
    pub title: String,
    pub description: String,
    pub listing_type: String,
    pub price: i64,
    pub currency: String,
    pub quantity: i64,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    pub seller: Seller,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Results {
    pub items: Vec<CatalogItem>,
    pub next_cursor: Option<String>,
    pub total: u64,
}

pub const SORTS: &[&str] = &["newest", "price_asc", "price_desc", "relevance"];

/// Where the previous page ended.
#[derive(Serialize, Deserialize)]
struct Position {
    sort: String,
    id: String,
    price: i64,
    offset: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the cursor is not valid for this query")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The words of `q` as an FTS5 query: every word must match, as a prefix. `None` when `q` has
/// no words at all.
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"*", w.chars().take(64).collect::<String>()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

const COLUMNS: &str =
    "i.id, i.seller_id, i.title, i.description, i.listing_type, i.price, i.currency,
    i.quantity, i.status, i.created_at, i.updated_at, i.version, i.seller_name";

fn item(r: &Row) -> rusqlite::Result<CatalogItem> {
    let seller_id: String = r.get(1)?;
    Ok(CatalogItem {
        id: r.get(0)?,
        seller: Seller {
            id: seller_id.clone(),
            name: r.get(12)?,
        },
        seller_id,
        title: r.get(2)?,
        description: r.get(3)?,
        listing_type: r.get(4)?,
        price: r.get(5)?,
        currency: r.get(6)?,
        quantity: r.get(7)?,
        status: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        version: r.get::<_, i64>(11)? as u64,
    })
}

/// Runs a validated search (the gateway checked the parameters' ranges and values).
pub fn search(db: &Db, s: &Search, limit: usize) -> Result<Results, QueryError> {
    // An empty or blank `q` is no text filter; text of punctuation alone matches nothing.
    let text =
        s.q.as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(fts_query);
    if let Some(None) = text {
        // Only punctuation: nothing can match.
        return Ok(Results {
            items: Vec::new(),
            next_cursor: None,
            total: 0,
        });
    }
    let text = text.flatten();
    let sort = s.sort.clone().unwrap_or_else(|| {
        if text.is_some() {
            "relevance"
        } else {
            "newest"
        }
        .into()
    });
    let position = match &s.cursor {
        Some(c) => Some(
            decode_cursor::<Position>(c)
                .filter(|p| p.sort == sort)
                .ok_or(QueryError::BadCursor)?,
        ),
        None => None,
    };

    let mut from = String::from("items i");
    let mut filters = vec!["i.hidden = 0".to_string(), "i.status = ?".to_string()];
    let mut args: Vec<Value> = Vec::new();
    if let Some(t) = &text {
        // CROSS JOIN keeps the full-text match as the outer loop: the work is then bounded by
        // the matches. Left to itself the planner may walk an index over `items` instead and
        // probe the full-text index once per row, which costs ~0.1 ms per probe (a prefix
        // query is expanded again every time): seconds for a rare word in a wide price range.
        from = "items_fts f CROSS JOIN items i ON i.rowid = f.rowid".into();
        filters.insert(0, "items_fts MATCH ?".into());
        args.push(Value::Text(t.clone()));
    }
    args.push(Value::Text(
        s.status.clone().unwrap_or_else(|| "active".into()),
    ));
    let mut add = |sql: &str, v: Value| {
        filters.push(sql.to_string());
        args.push(v);
    };
    if let Some(v) = &s.seller_id {
        add("i.seller_id = ?", Value::Text(v.clone()));
    }
    if let Some(v) = &s.listing_type {
        add("i.listing_type = ?", Value::Text(v.clone()));
    }
    if let Some(v) = s.min_price {
        add("i.price >= ?", Value::Integer(v));
    }
    if let Some(v) = s.max_price {
        add("i.price <= ?", Value::Integer(v));
    }
    // Without text, a price range or a seller, the total is kept by the projector
    // (`item_counts`): counting a million index entries per page would cost ~0.1 s.
    let (count_sql, count_args) = if text.is_none()
        && s.seller_id.is_none()
        && s.min_price.is_none()
        && s.max_price.is_none()
    {
        let mut sql = "SELECT coalesce(sum(n), 0) FROM item_counts WHERE status = ?".to_string();
        let mut a = vec![Value::Text(
            s.status.clone().unwrap_or_else(|| "active".into()),
        )];
        if let Some(v) = &s.listing_type {
            sql += " AND listing_type = ?";
            a.push(Value::Text(v.clone()));
        }
        (sql, a)
    } else {
        (
            format!(
                "SELECT count(*) FROM {from} WHERE {}",
                filters.join(" AND ")
            ),
            args.clone(),
        )
    };

    let (order, mut offset) = match sort.as_str() {
        "price_asc" => ("i.price ASC, i.id ASC", 0),
        "price_desc" => ("i.price DESC, i.id DESC", 0),
        "relevance" if text.is_some() => (
            "f.rank, i.id DESC",
            position.as_ref().map_or(0, |p| p.offset),
        ),
        _ => ("i.id DESC", 0),
    };
    if let Some(p) = &position {
        match sort.as_str() {
            "price_asc" => add_keyset(&mut filters, &mut args, ">", p),
            "price_desc" => add_keyset(&mut filters, &mut args, "<", p),
            "relevance" if text.is_some() => {}
            _ => {
                filters.push("i.id < ?".into());
                args.push(Value::Text(p.id.clone()));
            }
        }
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM {from} WHERE {} ORDER BY {order} LIMIT {} OFFSET {offset}",
        filters.join(" AND "),
        limit + 1
    );
    let run = |c: &Connection| -> rusqlite::Result<(Vec<CatalogItem>, u64)> {
        let mut stmt = c.prepare_cached(&sql)?;
        let items = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), item)?
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = c
            .prepare_cached(&count_sql)?
            .query_row(rusqlite::params_from_iter(count_args.iter()), |r| r.get(0))?;
        Ok((items, total as u64))
    };
    let (mut items, total) = db.read(|c| {
        run(c).map_err(|e| super::store::sqlite_error(&db.path(), "searching the catalog", e))
    })?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        offset += limit as u64;
        items.last().map(|last| {
            encode_cursor(&Position {
                sort: sort.clone(),
                id: last.id.clone(),
                price: last.price,
                offset,
            })
        })
    } else {
        None
    };
    Ok(Results {
        items,
        next_cursor,
        total,
    })
}

fn add_keyset(filters: &mut Vec<String>, args: &mut Vec<Value>, op: &str, p: &Position) {
    filters.push(format!("(i.price {op} ? OR (i.price = ? AND i.id {op} ?))"));
    args.extend([
        Value::Integer(p.price),
        Value::Integer(p.price),
        Value::Text(p.id.clone()),
    ]);
}

/// One visible item.
pub fn get(db: &Db, id: &str) -> Result<Option<CatalogItem>, StoreError> {
    db.read(|c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM items i WHERE i.id = ?1 AND i.hidden = 0"),
            [id],
            item,
        )
        .optional()
        .map_err(|e| super::store::sqlite_error(&db.path(), "reading a catalog item", e))
    })
}

/// The version the catalog holds of `id`, hidden or not (for read-your-writes waits).
pub fn version_of(db: &Db, id: &str) -> Result<Option<u64>, StoreError> {
    db.read(|c| {
        c.query_row("SELECT version FROM items WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
        .map(|v| v.map(|v| v as u64))
        .map_err(|e| super::store::sqlite_error(&db.path(), "reading a catalog version", e))
    })
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn user_text_is_quoted_words() {
        assert_eq!(fts_query("red bike").as_deref(), Some("\"red\"* \"bike\"*"));
        assert_eq!(
            fts_query("NEAR(a b) \"x\" '; DROP").as_deref(),
            Some("\"NEAR\"* \"a\"* \"b\"* \"x\"* \"DROP\"*")
        );
        assert_eq!(fts_query("* \" ( )"), None);
        assert_eq!(fts_query("Café").as_deref(), Some("\"Café\"*"));
    }
}
