//! Catalog queries: full text (FTS5, diacritics-insensitive, each word a prefix), filters, four
//! sort orders with keyset cursors (relevance pages by offset), and the total count.
//!
//! User text never reaches SQL or FTS syntax: it is split into words and each word is quoted,
//! so `"`, `*`, `NEAR(` or `'; DROP` are just text.

use super::index::{self, Order};
use super::store::{Db, Generation};
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

/// The words of `q` as the in-memory index matches them (each a prefix), as [`fts_query`]
/// picks them.
pub fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| index::normalize(&w.chars().take(64).collect::<String>()))
        .filter(|w| !w.is_empty())
        .collect()
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

/// A row of [`COLUMNS`] as [`CatalogItem`] encodes it, borrowing its text from SQLite: a
/// search's page is written straight from the rows, without a `String` per column (the
/// `page_json_is_catalog_items` test keeps the two encodings the same).
#[derive(Serialize)]
struct ItemRef<'a> {
    id: &'a str,
    seller_id: &'a str,
    title: &'a str,
    description: &'a str,
    listing_type: &'a str,
    price: i64,
    currency: &'a str,
    quantity: i64,
    status: &'a str,
    created_at: &'a str,
    updated_at: &'a str,
    version: u64,
    seller: SellerRef<'a>,
}

#[derive(Serialize)]
struct SellerRef<'a> {
    id: &'a str,
    name: &'a str,
}

/// Column `i` of `r` as text, borrowed.
fn text<'r>(r: &'r Row, i: usize) -> rusqlite::Result<&'r str> {
    let v = r.get_ref(i)?;
    v.as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), e.into()))
}

/// A search's rows as they are read: each one's JSON, comma-separated, and what a cursor
/// after it needs.
#[derive(Default)]
struct PageRows {
    json: Vec<u8>,
    /// Per row: where its JSON ends, its id and its price.
    rows: Vec<(usize, String, i64)>,
}

impl PageRows {
    fn push(&mut self, r: &Row) -> rusqlite::Result<()> {
        let text = |i| text(r, i);
        let seller_id = text(1)?;
        let item = ItemRef {
            id: text(0)?,
            seller_id,
            title: text(2)?,
            description: text(3)?,
            listing_type: text(4)?,
            price: r.get(5)?,
            currency: text(6)?,
            quantity: r.get(7)?,
            status: text(8)?,
            created_at: text(9)?,
            updated_at: text(10)?,
            version: r.get::<_, i64>(11)? as u64,
            seller: SellerRef {
                id: seller_id,
                name: text(12)?,
            },
        };
        if !self.rows.is_empty() {
            self.json.push(b',');
        }
        serde_json::to_writer(&mut self.json, &item)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.rows
            .push((self.json.len(), item.id.to_string(), item.price));
        Ok(())
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}

/// Runs a validated search (the gateway checked the parameters' ranges and values).
pub fn search(db: &Db, s: &Search, limit: usize) -> Result<Results, QueryError> {
    let json = search_json(db, s, limit)?;
    Ok(serde_json::from_slice(&json).expect("a search page decodes as Results"))
}

/// [`search`] as the rpc answers it: [`Results`] in JSON, each row written straight from
/// SQLite's columns.
pub fn search_json(db: &Db, s: &Search, limit: usize) -> Result<Vec<u8>, QueryError> {
    let limit = limit.max(1);
    // An empty or blank `q` is no text filter; text of punctuation alone matches nothing.
    let text =
        s.q.as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(fts_query);
    if let Some(None) = text {
        // Only punctuation: nothing can match.
        return Ok(page_json(PageRows::default(), None, 0));
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

    let generation = db.current();
    let (order, offset) = match sort.as_str() {
        "price_asc" => (Order::PriceAsc, 0),
        "price_desc" => (Order::PriceDesc, 0),
        "relevance" if text.is_some() => {
            (Order::Relevance, position.as_ref().map_or(0, |p| p.offset))
        }
        _ => (Order::Newest, 0),
    };
    let found = match (&text, &s.q) {
        (Some(_), Some(q)) => indexed(
            &generation,
            s,
            &query_words(q),
            order,
            position.as_ref(),
            offset,
            limit,
        )?,
        _ => None,
    };
    let (rows, total) = match found {
        Some(found) => found,
        None => sql_search(
            &generation,
            s,
            text,
            order,
            position.as_ref(),
            offset,
            limit,
        )?,
    };
    Ok(finish_page(rows, limit, sort, offset, total))
}

/// The page's first `limit` rows (of up to `limit + 1` read), with a cursor after them when
/// there were more.
fn finish_page(mut rows: PageRows, limit: usize, sort: String, offset: u64, total: u64) -> Vec<u8> {
    let next_cursor = (rows.len() > limit).then(|| {
        let (end, id, price) = &rows.rows[limit - 1];
        rows.json.truncate(*end);
        encode_cursor(&Position {
            sort,
            id: id.clone(),
            price: *price,
            offset: offset + limit as u64,
        })
    });
    page_json(rows, next_cursor, total)
}

/// `{"items":[…],"next_cursor":…,"total":…}`, as [`Results`] encodes.
fn page_json(rows: PageRows, next_cursor: Option<String>, total: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.json.len() + 128);
    out.extend_from_slice(b"{\"items\":[");
    out.extend_from_slice(&rows.json);
    out.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut out, &next_cursor).expect("a string encodes");
    out.extend_from_slice(b",\"total\":");
    out.extend_from_slice(total.to_string().as_bytes());
    out.push(b'}');
    out
}

/// A text search on the in-memory index (`None` while it is not ready): the page's rows and
/// `total`.
fn indexed(
    generation: &Generation,
    s: &Search,
    words: &[String],
    order: Order,
    position: Option<&Position>,
    offset: u64,
    limit: usize,
) -> Result<Option<(PageRows, u64)>, QueryError> {
    if words.is_empty() {
        return Ok(Some((PageRows::default(), 0)));
    }
    let after = match (order, position) {
        (Order::Relevance, _) | (_, None) => None,
        (_, Some(p)) => Some((index::id_key(&p.id).ok_or(QueryError::BadCursor)?, p.price)),
    };
    let status = s.status.as_deref().unwrap_or("active");
    let request = index::Request {
        words,
        status,
        listing_type: s.listing_type.as_deref(),
        seller_id: s.seller_id.as_deref(),
        min_price: s.min_price,
        max_price: s.max_price,
        order,
        after,
        offset,
        take: limit + 1,
    };
    let path = generation.path().to_path_buf();
    let found = generation.read(|c| {
        let run = |ix: &index::TextIndex| -> rusqlite::Result<(PageRows, u64)> {
            let found = ix.search(&request);
            let rowids = match &found.walk {
                Some(set) => walk_prices(c, &request, position, set)?,
                None => found.rowids,
            };
            Ok((fetch(c, &rowids)?, found.total))
        };
        generation
            .with_text_index(run)
            .transpose()
            .map_err(|e| super::store::sqlite_error(&path, "searching the catalog", e))
    })?;
    Ok(found)
}

/// The first `take` rows of `set` in a price order with the request's filters, found by
/// walking the (hidden, status, price, id) index: for a large `set`, a few hundred steps
/// instead of sorting every match.
fn walk_prices(
    c: &Connection,
    q: &index::Request,
    after: Option<&Position>,
    set: &roaring::RoaringBitmap,
) -> rusqlite::Result<Vec<i64>> {
    let (op, dir) = if q.order == Order::PriceDesc {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql = String::from(
        "SELECT rowid FROM items INDEXED BY items_status_price WHERE hidden = 0 AND status = ?",
    );
    let mut args = vec![Value::Text(q.status.to_string())];
    if let Some(v) = q.min_price {
        sql += " AND price >= ?";
        args.push(Value::Integer(v));
    }
    if let Some(v) = q.max_price {
        sql += " AND price <= ?";
        args.push(Value::Integer(v));
    }
    if let Some(p) = after {
        sql += &format!(" AND (price {op} ? OR (price = ? AND id {op} ?))");
        args.extend([
            Value::Integer(p.price),
            Value::Integer(p.price),
            Value::Text(p.id.clone()),
        ]);
    }
    sql += &format!(" ORDER BY price {dir}, id {dir}");
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::with_capacity(q.take);
    while out.len() < q.take {
        let Some(r) = rows.next()? else { break };
        let rowid: i64 = r.get(0)?;
        if u32::try_from(rowid).is_ok_and(|r| set.contains(r)) {
            out.push(rowid);
        }
    }
    Ok(out)
}

/// The rows, in the order given; a row hidden since the index was read is left out.
fn fetch(c: &Connection, rowids: &[i64]) -> rusqlite::Result<PageRows> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM items i WHERE i.rowid = ?1 AND i.hidden = 0"
    ))?;
    let mut page = PageRows::default();
    for rowid in rowids {
        if let Some(r) = stmt.query([rowid])?.next()? {
            page.push(r)?;
        }
    }
    Ok(page)
}

/// The page's rows and `total` straight from SQLite (FTS5 for text).
fn sql_search(
    generation: &Generation,
    s: &Search,
    text: Option<String>,
    order: Order,
    position: Option<&Position>,
    offset: u64,
    limit: usize,
) -> Result<(PageRows, u64), QueryError> {
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
    // Without text, the total comes from the search index once it is ready (`count`: sums of
    // its price counts, or a seller's rows); counting index entries in SQL instead costs ~0.1 s
    // a million rows, and a seller's ~15,000 rows ~0.2 ms, the most of any query without text.
    // Until then, without a price range or a seller it is kept by the projector (`item_counts`).
    let counted = text
        .is_none()
        .then(|| {
            generation.with_text_index(|ix| {
                ix.count(
                    s.status.as_deref().unwrap_or("active"),
                    s.listing_type.as_deref(),
                    s.seller_id.as_deref(),
                    s.min_price,
                    s.max_price,
                )
            })
        })
        .flatten();
    // The total, or (only when the index did not give it) the query that counts it.
    let total = counted.ok_or_else(|| {
        if text.is_none() && s.seller_id.is_none() && s.min_price.is_none() && s.max_price.is_none()
        {
            let mut sql =
                "SELECT coalesce(sum(n), 0) FROM item_counts WHERE status = ?".to_string();
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
        }
    });

    let order_by = match order {
        Order::PriceAsc => "i.price ASC, i.id ASC",
        Order::PriceDesc => "i.price DESC, i.id DESC",
        Order::Relevance => "f.rank, i.id DESC",
        Order::Newest => "i.id DESC",
    };
    if let Some(p) = position {
        match order {
            Order::PriceAsc => add_keyset(&mut filters, &mut args, ">", p),
            Order::PriceDesc => add_keyset(&mut filters, &mut args, "<", p),
            Order::Relevance => {}
            Order::Newest => {
                filters.push("i.id < ?".into());
                args.push(Value::Text(p.id.clone()));
            }
        }
    }
    // The page's bounds are literals, not parameters: the planner sees the page size (a bound
    // LIMIT is unknown to it under the fixed plans of `store::sqlite`). The reader's statement
    // cache keeps a page size's statement.
    let sql = format!(
        "SELECT {COLUMNS} FROM {from} WHERE {} ORDER BY {order_by} LIMIT {} OFFSET {offset}",
        filters.join(" AND "),
        limit + 1
    );
    let run = |c: &Connection| -> rusqlite::Result<(PageRows, u64)> {
        let mut stmt = c.prepare_cached(&sql)?;
        let mut items = PageRows::default();
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            items.push(r)?;
        }
        drop(rows);
        let total = match &total {
            Ok(n) => *n,
            Err((count_sql, count_args)) => c
                .prepare_cached(count_sql)?
                .query_row(rusqlite::params_from_iter(count_args.iter()), |r| {
                    r.get::<_, i64>(0)
                })? as u64,
        };
        Ok((items, total))
    };
    let path = generation.path().to_path_buf();
    Ok(generation.read(|c| {
        run(c).map_err(|e| super::store::sqlite_error(&path, "searching the catalog", e))
    })?)
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
pub(super) mod tests {
    use super::*;
    use crate::bus::{Envelope, Meta};
    use crate::services::catalog::projector::apply_batch;
    use serde_json::json;
    use std::collections::HashMap;

    /// xorshift: deterministic data without a dependency.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const VOCAB: &[&str] = &[
        "red",
        "redo",
        "reddish",
        "bike",
        "bicycle",
        "Café",
        "cafe",
        "crème",
        "Creme",
        "lamp",
        "lampshade",
        "chair",
        "oak",
        "oaken",
        "Über",
        "uber",
        "garçon",
        "42",
        "x1",
        "phone",
        "classic",
        "rare",
        "zz",
        "ca",
        "cat",
        "cap",
        "capo",
    ];

    fn text(rng: &mut Rng, n: usize) -> String {
        (0..n)
            .map(|_| VOCAB[rng.below(VOCAB.len())])
            .collect::<Vec<_>>()
            .join(if rng.below(2) == 0 { " " } else { ", " })
    }

    /// Random creates, edits (text, price, status), deletions of listings and of sellers.
    /// Column `col` of every row `sql` returns.
    pub(crate) fn strings(
        g: &Generation,
        sql: &str,
        params: impl rusqlite::Params,
        col: usize,
    ) -> Vec<String> {
        g.read(|c| {
            let mut stmt = c.prepare(sql).unwrap();
            Ok(stmt
                .query_map(params, |r| r.get(col))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap())
        })
        .unwrap()
    }

    pub(crate) fn events(rng: &mut Rng, n: usize) -> Vec<(Envelope, String, u64)> {
        let mut out = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut ids: Vec<String> = Vec::new();
        for s in 0..5 {
            let data = json!({"id": format!("usr_{s}"), "name": format!("S{s}"), "version": 1});
            let e = Envelope::new(
                "user.created",
                &format!("usr_{s}"),
                1,
                data,
                &Meta::default(),
            );
            out.push((e, "users".to_string(), out.len() as u64 + 1));
        }
        // New ids mostly in time order; one in ten arrives after a newer one.
        let mut fresh: Vec<String> = (0..n).map(|_| crate::ids::new("lst")).collect();
        for i in 1..n {
            if rng.below(10) == 0 {
                fresh.swap(i - 1, i);
            }
        }
        let mut fresh = fresh.into_iter();
        for _ in 0..n {
            let (kind, id) = if ids.is_empty() || rng.below(3) > 0 {
                ids.push(fresh.next().unwrap());
                ("listing.created", ids.last().unwrap().clone())
            } else if rng.below(15) == 0 {
                ("listing.deleted", ids[rng.below(ids.len())].clone())
            } else {
                ("listing.updated", ids[rng.below(ids.len())].clone())
            };
            let v = versions.entry(id.clone()).or_default();
            *v += 1;
            let listing_type = ["sale", "rent"][rng.below(2)];
            let status = ["active", "active", "sold", "reserved", "archived"][rng.below(5)];
            let (n_title, n_description) = (1 + rng.below(3), rng.below(6));
            let (title, description) = (text(rng, n_title), text(rng, n_description));
            let (seller, price) = (format!("usr_{}", rng.below(5)), rng.below(50) as i64 * 100);
            let data = json!({
                "id": id, "seller_id": seller,
                "title": title, "description": description,
                "listing_type": listing_type, "price": price,
                "currency": "EUR", "quantity": 1,
                "status": status,
                "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
                "version": *v,
            });
            let e = Envelope::new(kind, &id, *v, data, &Meta::default());
            out.push((e, "listings".to_string(), out.len() as u64 + 1));
        }
        out
    }

    fn queries(rng: &mut Rng) -> Vec<Search> {
        let mut out = Vec::new();
        for _ in 0..150 {
            let words = 1 + rng.below(2);
            let q: Vec<String> = (0..words)
                .map(|_| {
                    let w = VOCAB[rng.below(VOCAB.len())];
                    // Whole words and prefixes of them, as typed.
                    let cut = 1 + rng.below(w.chars().count());
                    w.chars().take(cut).collect()
                })
                .collect();
            out.push(Search {
                q: Some(q.join(" ")),
                sort: Some(SORTS[rng.below(SORTS.len())].to_string()),
                status: (rng.below(4) == 0).then(|| "sold".into()),
                listing_type: (rng.below(4) == 0).then(|| "rent".into()),
                seller_id: (rng.below(5) == 0).then(|| format!("usr_{}", rng.below(5))),
                min_price: (rng.below(4) == 0).then_some(1000),
                max_price: (rng.below(4) == 0).then_some(3000),
                limit: Some(1 + rng.below(7) as u32),
                cursor: None,
            });
        }
        out
    }

    /// Every page of a search, through `search` (the index) and straight on FTS5.
    fn pages(db: &Db, s: &Search) -> (Vec<Vec<String>>, Vec<Vec<String>>, u64, u64) {
        let limit = s.limit.unwrap() as usize;
        let walk = |indexed: bool| {
            let mut s = s.clone();
            let mut pages = Vec::new();
            let total = loop {
                let r = if indexed {
                    search(db, &s, limit).unwrap()
                } else {
                    let g = db.current();
                    let text = fts_query(s.q.as_deref().unwrap());
                    let sort = s.sort.clone().unwrap();
                    let position = s
                        .cursor
                        .as_ref()
                        .map(|c| decode_cursor::<Position>(c).unwrap());
                    let order = match sort.as_str() {
                        "price_asc" => Order::PriceAsc,
                        "price_desc" => Order::PriceDesc,
                        "relevance" => Order::Relevance,
                        _ => Order::Newest,
                    };
                    let offset = match order {
                        Order::Relevance => position.as_ref().map_or(0, |p| p.offset),
                        _ => 0,
                    };
                    let (rows, total) =
                        sql_search(&g, &s, text, order, position.as_ref(), offset, limit).unwrap();
                    let json = finish_page(rows, limit, sort, offset, total);
                    serde_json::from_slice::<Results>(&json).unwrap()
                };
                pages.push(r.items.into_iter().map(|i| i.id).collect());
                match r.next_cursor {
                    Some(c) => s.cursor = Some(c),
                    None => break r.total,
                }
            };
            (pages, total)
        };
        let (a, ta) = walk(true);
        let (b, tb) = walk(false);
        (a, b, ta, tb)
    }

    /// The in-memory index finds what FTS5 finds, in the same order for every keyset sort,
    /// and every match exactly once across the pages of a relevance search.
    fn same_as_fts(db: &Db, rng: &mut Rng) {
        assert!(db.current().text_index_ready());
        for s in queries(rng) {
            let (indexed, fts, ti, tf) = pages(db, &s);
            assert_eq!(ti, tf, "total of {s:?}");
            if s.sort.as_deref() == Some("relevance") {
                let mut a: Vec<String> = indexed.concat();
                let mut b: Vec<String> = fts.concat();
                assert_eq!(a.len() as u64, ti, "each match once: {s:?}");
                a.sort();
                b.sort();
                assert_eq!(a, b, "matches of {s:?}");
            } else {
                let first = indexed.iter().zip(&fts).position(|(a, b)| a != b);
                assert!(
                    first.is_none() && indexed.len() == fts.len(),
                    "pages of {s:?} differ from page {first:?}: {:?} vs {:?}",
                    first.map(|i| &indexed[i]),
                    first.map(|i| &fts[i]),
                );
            }
        }
    }

    /// The index's totals without text match a count of the rows, for every filter.
    fn counts_match(db: &Db, rng: &mut Rng) {
        let g = db.current();
        let sellers = strings(&g, "SELECT DISTINCT seller_id FROM items", [], 0);
        for _ in 0..200 {
            let status = ["active", "sold", "reserved"][rng.below(3)];
            let listing_type = ["sale", "rent", "auction"][rng.below(3)];
            let typed = rng.below(2) == 0;
            let seller = match rng.below(4) {
                0 => Some(sellers[rng.below(sellers.len())].clone()),
                1 => Some("usr_unknown".to_string()),
                _ => None,
            };
            let mut bound = || (rng.below(3) > 0).then(|| rng.below(60) as i64 * 100);
            let (lo, hi) = (bound(), bound());
            let counted: i64 = g
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT count(*) FROM items WHERE hidden = 0 AND status = ?1
                         AND (?2 IS NULL OR listing_type = ?2) AND (?3 IS NULL OR seller_id = ?3)
                         AND price >= coalesce(?4, price) AND price <= coalesce(?5, price)",
                        rusqlite::params![status, typed.then_some(listing_type), seller, lo, hi],
                        |r| r.get(0),
                    )
                    .unwrap())
                })
                .unwrap();
            let indexed = g
                .with_text_index(|ix| {
                    ix.count(
                        status,
                        typed.then_some(listing_type),
                        seller.as_deref(),
                        lo,
                        hi,
                    )
                })
                .unwrap();
            assert_eq!(
                indexed, counted as u64,
                "{status} {listing_type} {seller:?} {lo:?}..={hi:?}"
            );
        }
    }

    #[test]
    fn the_index_answers_as_fts5_does() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let g = db.current();
        g.build_text_index().unwrap();
        let mut rng = Rng(0x5eed);
        // Kept up to date batch by batch by the projector.
        for batch in events(&mut rng, 1500).chunks(37) {
            let batch: Vec<_> = batch
                .iter()
                .map(|(e, stream, seq)| (e.into(), stream.clone(), *seq))
                .collect();
            let outcomes = apply_batch(&g, &batch).unwrap();
            assert!(outcomes.iter().all(Result::is_ok));
        }
        let deleted = Envelope::new(
            "user.deleted",
            "usr_3",
            2,
            json!({"id": "usr_3", "name": "S3", "version": 2}),
            &Meta::default(),
        );
        apply_batch(&g, &[((&deleted).into(), "users".into(), 9999)]).unwrap();
        same_as_fts(&db, &mut rng);
        counts_match(&db, &mut rng);
        // Built from the rows.
        g.build_text_index().unwrap();
        same_as_fts(&db, &mut rng);
        counts_match(&db, &mut rng);
    }

    #[test]
    fn page_json_is_catalog_items() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let g = db.current();
        let mut rng = Rng(0xa11ce);
        let mut batch = events(&mut rng, 300);
        // Text that JSON has to escape.
        let odd = crate::ids::new("lst");
        let data = json!({
            "id": odd, "seller_id": "usr_1",
            "title": "red \"quoted\" back\\slash\ttab 😀", "description": "ctl\u{1}\u{7f} crème",
            "listing_type": "sale", "price": 0, "currency": "EUR", "quantity": 0,
            "status": "active",
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
            "version": 1,
        });
        let e = Envelope::new("listing.created", &odd, 1, data, &Meta::default());
        batch.push((e, "listings".into(), 10_000));
        let batch: Vec<_> = batch
            .iter()
            .map(|(e, stream, seq)| (e.into(), stream.clone(), *seq))
            .collect();
        assert!(apply_batch(&g, &batch).unwrap().iter().all(Result::is_ok));
        let mut searches = queries(&mut rng);
        searches.extend([
            Search::default(),
            Search {
                q: Some("quoted".into()),
                ..Search::default()
            },
            Search {
                sort: Some("price_asc".into()),
                limit: Some(3),
                ..Search::default()
            },
        ]);
        let mut rows = 0;
        // The SQL path (FTS5 for text), then the in-memory index.
        for ready in [false, true] {
            if ready {
                g.build_text_index().unwrap();
            }
            for s in &searches {
                let limit = s.limit.unwrap_or(20) as usize;
                let json = search_json(&db, s, limit).unwrap();
                let page: Results = serde_json::from_slice(&json).unwrap();
                // Byte for byte what `Results` encodes (field order, escapes)...
                assert_eq!(
                    String::from_utf8(serde_json::to_vec(&page).unwrap()).unwrap(),
                    String::from_utf8(json).unwrap(),
                    "{s:?}"
                );
                // ...with each row as a point read gives it.
                for item in &page.items {
                    assert_eq!(Some(item), get(&db, &item.id).unwrap().as_ref());
                }
                rows += page.items.len();
            }
        }
        assert!(rows > 300, "the searches found {rows} rows");
        let odd_page = search(
            &db,
            &Search {
                q: Some("quoted".into()),
                ..Search::default()
            },
            20,
        )
        .unwrap();
        assert_eq!(odd_page.items.len(), 1);
        assert_eq!(odd_page.items[0].description, "ctl\u{1}\u{7f} crème");
    }

    #[test]
    fn prefixes_and_accents_match_as_typed() {
        let words = query_words("Café  CRÈ* über-x 'NEAR(");
        assert_eq!(words, ["cafe", "cre", "uber", "x", "near"]);
    }

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
