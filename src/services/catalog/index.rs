//! The catalog's in-memory search index: what makes a text search over a million listings take
//! a fraction of a millisecond instead of SQLite FTS5's hundreds (see BENCHMARKS.md).
//!
//! `catalog.sqlite` stays the store: the index is derived from its rows when a generation is
//! opened (in the background; until then searches run on FTS5) and kept up to date by the
//! projector after each committed batch. It holds, per word of title and description, the set
//! of rows containing it (and the subset with it in the title) as compressed bitmaps of SQLite
//! rowids, the visible rows per status, the rows per type and per seller, and per row its
//! price and the numeric value of its id (ids sort by time).
//!
//! A search is bitmap algebra: the rows of every query word (each a prefix: the union of the
//! words it starts) and of every filter, intersected. Its size is `total`. The page is then
//! picked without sorting all matches:
//! - `newest`: the matches walked from the highest rowid down, as rowids grow with ids except
//!   for rows that arrived out of order, which are kept apart (`disorder`) and merged in;
//! - `relevance`: matches grouped by score, groups taken best first, each newest first;
//! - `price_*`: few matches are sorted by price here; many are found by walking SQLite's price
//!   index and keeping the rows in the match set (see `query.rs`).
//!
//! Relevance is idf-weighted: each query word adds its `idf` (rarer words weigh more) once,
//! twice if it is in the title or appears more than once, three times if both (for the three
//! rarest words of a query); ties go to the newest. The words are normalised as FTS5's `unicode61
//! remove_diacritics 2` does (lowercase, diacritics removed), so `Café` finds `cafe`.

use roaring::{MultiOps, RoaringBitmap};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// The words of `text` as the index keeps them.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(normalize)
        .filter(|w| !w.is_empty())
}

/// Lowercase, without diacritics (`Crème` → `creme`).
pub fn normalize(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The listing id's place in time order (ids of one prefix sort like their values).
pub fn id_key(id: &str) -> Option<u128> {
    crate::ids::decode("lst", id)
}

/// One row's state after a batch, as the projector wrote it.
#[derive(Clone, Debug)]
pub struct Item {
    pub rowid: i64,
    pub id: String,
    pub seller_id: String,
    pub listing_type: String,
    pub status: String,
    pub price: i64,
    pub hidden: bool,
    /// The text the row had before, when its text changed (to unindex).
    pub old_text: Option<(String, String)>,
    /// The row's text, when it is new or changed.
    pub new_text: Option<(String, String)>,
}

/// A change to apply, in commit order.
#[derive(Clone, Debug)]
pub enum Change {
    Item(Item),
    /// Every row of this seller is now hidden.
    SellerDeleted(String),
}

/// Why a generation's rows cannot be indexed (searches then stay on FTS5).
#[derive(Debug, thiserror::Error)]
pub enum Unindexable {
    #[error("row {0} has a rowid beyond 32 bits")]
    Rowid(i64),
    #[error("listing id {0:?} is not a Souk id, so its time order is unknown")]
    Id(String),
}

/// Names seen in a column, numbered.
#[derive(Default)]
struct Names {
    ids: HashMap<Box<str>, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(name.into(), i);
        i
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
}

/// The rows containing a word, those with it in the title, and those with it more than once.
#[derive(Default)]
struct Postings {
    all: RoaringBitmap,
    title: RoaringBitmap,
    repeated: RoaringBitmap,
}

/// Per row (indexed by rowid): what filters and orders need.
#[derive(Clone, Copy, Default)]
struct Row {
    status: u32,
    listing_type: u32,
    seller: u32,
    visible: bool,
    present: bool,
}

/// One query word: the rows containing a word it starts, and its weight.
struct Word<'a> {
    rows: Rows<'a>,
    idf: f64,
}

/// A query word's rows: one word's postings, borrowed, or the union of several (shared with
/// the cache).
enum Rows<'a> {
    One(&'a Postings),
    Many(Arc<Postings>),
}

impl Word<'_> {
    fn all(&self) -> &RoaringBitmap {
        &self.postings().all
    }

    fn postings(&self) -> &Postings {
        match &self.rows {
            Rows::One(p) => p,
            Rows::Many(p) => p,
        }
    }
}

/// Unions of the words a prefix starts (`ca` → `cab`, `cafe`, `camera`…) are worth keeping
/// while the index does not change: a short prefix can start thousands of words.
const UNIONS_KEPT: usize = 1024;

#[derive(Default)]
pub struct TextIndex {
    /// Every word seen, numbered; its postings by number; and the words in order (for
    /// prefixes).
    term_ids: HashMap<Box<str>, u32>,
    postings: Vec<Postings>,
    terms: BTreeMap<Box<str>, u32>,
    rows: Vec<Row>,
    keys: Vec<u128>,
    prices: Vec<i64>,
    statuses: Names,
    types: Names,
    sellers: Names,
    /// Visible rows per status.
    visible: Vec<RoaringBitmap>,
    by_type: Vec<RoaringBitmap>,
    by_seller: Vec<RoaringBitmap>,
    /// Visible rows per (status, type) and price: the `total` of a price range without text.
    price_counts: HashMap<(u32, u32), BTreeMap<i64, u32>>,
    /// Rows whose id is older than that of a row with a lower rowid: not in rowid order.
    disorder: RoaringBitmap,
    /// Prefix unions computed since the index last changed.
    unions: Mutex<HashMap<Box<str>, Arc<Postings>>>,
    /// An empty posting list, for a prefix nothing starts.
    empty: Postings,
    /// Rows in the index, and the highest rowid and in-order key.
    len: u64,
    max_rowid: u32,
    max_key: u128,
}

/// A sort order of the matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Newest,
    PriceAsc,
    PriceDesc,
    Relevance,
}

/// A text search, its words already normalised.
pub struct Request<'a> {
    pub words: &'a [String],
    pub status: &'a str,
    pub listing_type: Option<&'a str>,
    pub seller_id: Option<&'a str>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub order: Order,
    /// Where the previous page ended: the id's key and the price (keyset orders).
    pub after: Option<(u128, i64)>,
    /// Rows to skip (relevance pages by offset).
    pub offset: u64,
    /// Rows wanted (a page and one more, to know whether there is a next page).
    pub take: usize,
}

/// What a search found: the matches' number and, unless the caller must walk a price index
/// (`walk`), the page's rowids in order.
pub struct Found {
    pub total: u64,
    pub rowids: Vec<i64>,
    /// Many matches in a price order: the caller walks SQLite's price index and keeps the rows
    /// in this set (cheaper than sorting them all).
    pub walk: Option<RoaringBitmap>,
}

impl TextIndex {
    /// Rows with text in the index.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Distinct words.
    pub fn words(&self) -> usize {
        self.terms.len()
    }

    /// The postings of `word`, created if new.
    fn term(&mut self, word: &str) -> &mut Postings {
        let id = match self.term_ids.get(word) {
            Some(&id) => id,
            None => {
                let id = self.postings.len() as u32;
                self.term_ids.insert(word.into(), id);
                self.terms.insert(word.into(), id);
                self.postings.push(Postings::default());
                id
            }
        };
        &mut self.postings[id as usize]
    }

    /// Applies one change (idempotent in effect when a change arrives again after a newer
    /// state: see [`TextIndex::apply`] in `store.rs`'s build).
    pub fn apply(&mut self, change: &Change) -> Result<(), Unindexable> {
        let unions = self.unions.get_mut().unwrap_or_else(|e| e.into_inner());
        if !unions.is_empty() {
            unions.clear();
        }
        match change {
            Change::Item(item) => self.put(item),
            Change::SellerDeleted(seller) => {
                if let Some(s) = self.sellers.get(seller) {
                    let rows = self.by_seller[s as usize].clone();
                    for r in &rows {
                        self.set_visible(r, false);
                    }
                }
                Ok(())
            }
        }
    }

    fn put(&mut self, item: &Item) -> Result<(), Unindexable> {
        let r = u32::try_from(item.rowid).map_err(|_| Unindexable::Rowid(item.rowid))?;
        let i = r as usize;
        if self.rows.len() <= i {
            let n = (i + 1).max(self.rows.len() * 5 / 4);
            self.rows.resize(n, Row::default());
            self.keys.resize(n, 0);
            self.prices.resize(n, 0);
        }
        let row = self.rows[i];
        if row.present {
            // Out of every set it is in by its old state.
            self.set_visible(r, false);
            self.by_type[row.listing_type as usize].remove(r);
            self.by_seller[row.seller as usize].remove(r);
        } else {
            let key = id_key(&item.id).ok_or_else(|| Unindexable::Id(item.id.clone()))?;
            self.keys[i] = key;
            if self.len == 0 || (r > self.max_rowid && key > self.max_key) {
                self.max_key = key;
            } else {
                self.disorder.insert(r);
            }
            self.max_rowid = self.max_rowid.max(r);
            self.len += 1;
        }
        let status = self.statuses.id(&item.status);
        let listing_type = self.types.id(&item.listing_type);
        let seller = self.sellers.id(&item.seller_id);
        grow(&mut self.visible, status);
        grow(&mut self.by_type, listing_type);
        grow(&mut self.by_seller, seller);
        self.rows[i] = Row {
            status,
            listing_type,
            seller,
            visible: false,
            present: true,
        };
        self.prices[i] = item.price;
        self.by_type[listing_type as usize].insert(r);
        self.by_seller[seller as usize].insert(r);
        self.set_visible(r, !item.hidden);
        if let Some((title, description)) = &item.old_text {
            for w in words(title).chain(words(description)) {
                if let Some(&id) = self.term_ids.get(w.as_str()) {
                    let p = &mut self.postings[id as usize];
                    p.all.remove(r);
                    p.title.remove(r);
                    p.repeated.remove(r);
                }
            }
        }
        if let Some((title, description)) = &item.new_text {
            // Each word once, knowing whether it is in the title and whether it repeats.
            let mut seen: Vec<(String, bool)> = words(title)
                .map(|w| (w, true))
                .chain(words(description).map(|w| (w, false)))
                .collect();
            seen.sort_unstable();
            for group in seen.chunk_by(|a, b| a.0 == b.0) {
                let p = self.term(&group[0].0);
                p.all.insert(r);
                if group.iter().any(|(_, in_title)| *in_title) {
                    p.title.insert(r);
                }
                if group.len() > 1 {
                    p.repeated.insert(r);
                }
            }
        }
        Ok(())
    }

    /// Shows or hides row `r` by its current status, type and price.
    fn set_visible(&mut self, r: u32, visible: bool) {
        let row = &mut self.rows[r as usize];
        if row.visible == visible {
            return;
        }
        row.visible = visible;
        let set = &mut self.visible[row.status as usize];
        let prices = self
            .price_counts
            .entry((row.status, row.listing_type))
            .or_default();
        let price = self.prices[r as usize];
        if visible {
            set.insert(r);
            *prices.entry(price).or_default() += 1;
        } else {
            set.remove(r);
            if let Some(n) = prices.get_mut(&price) {
                *n -= 1;
                if *n == 0 {
                    prices.remove(&price);
                }
            }
        }
    }

    /// Visible rows with `status` (and `listing_type`, of `seller_id`) priced within
    /// `min..=max`: a search's `total` without text. Without a seller, distinct prices in the
    /// range are summed, not rows (summing all of them would take ~1 ms: a range is needed);
    /// a seller's rows are counted one by one (a seller has few).
    pub fn count(
        &self,
        status: &str,
        listing_type: Option<&str>,
        seller_id: Option<&str>,
        min: Option<i64>,
        max: Option<i64>,
    ) -> u64 {
        let Some(status) = self.statuses.get(status) else {
            return 0;
        };
        let listing_type = match listing_type.map(|t| self.types.get(t)) {
            Some(None) => return 0,
            Some(Some(t)) => Some(t),
            None => None,
        };
        let (lo, hi) = (min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX));
        if lo > hi {
            return 0;
        }
        if let Some(seller) = seller_id {
            let Some(seller) = self.sellers.get(seller) else {
                return 0;
            };
            let mut rows = &self.by_seller[seller as usize] & &self.visible[status as usize];
            if let Some(t) = listing_type {
                rows &= &self.by_type[t as usize];
            }
            if min.is_none() && max.is_none() {
                return rows.len();
            }
            return rows
                .iter()
                .filter(|r| (lo..=hi).contains(&self.prices[*r as usize]))
                .count() as u64;
        }
        let visible = &self.visible[status as usize];
        if min.is_none() && max.is_none() {
            return match listing_type {
                Some(t) => visible.intersection_len(&self.by_type[t as usize]),
                None => visible.len(),
            };
        }
        self.price_counts
            .iter()
            .filter(|((s, t), _)| *s == status && listing_type.is_none_or(|lt| lt == *t))
            .map(|(_, prices)| {
                prices
                    .range(lo..=hi)
                    .map(|(_, n)| u64::from(*n))
                    .sum::<u64>()
            })
            .sum()
    }

    /// The rows containing a word that starts with `prefix`.
    fn word(&self, prefix: &str) -> Word<'_> {
        let mut matching = self.starting(prefix);
        let rows = match (matching.next(), matching.next()) {
            (None, _) => Rows::One(&self.empty),
            (Some(p), None) => Rows::One(p),
            (Some(_), Some(_)) => Rows::Many(self.union(prefix)),
        };
        let n = match &rows {
            Rows::One(p) => p.all.len(),
            Rows::Many(p) => p.all.len(),
        } as f64;
        let idf = (1.0 + (self.len as f64 - n + 0.5) / (n + 0.5)).ln();
        Word { rows, idf }
    }

    /// The postings of every word `prefix` starts, in word order.
    fn starting<'a, 'p>(
        &'a self,
        prefix: &'p str,
    ) -> impl Iterator<Item = &'a Postings> + use<'a, 'p> {
        self.terms
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(t, _)| t.starts_with(prefix))
            .map(|(_, id)| &self.postings[*id as usize])
    }

    /// The union of the postings of every word `prefix` starts, from the cache if the index
    /// has not changed since it was computed.
    fn union(&self, prefix: &str) -> Arc<Postings> {
        let lock = || self.unions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = lock().get(prefix) {
            return u.clone();
        }
        let matching = || self.starting(prefix);
        let union = Arc::new(Postings {
            all: matching().map(|p| &p.all).union(),
            title: matching().map(|p| &p.title).union(),
            repeated: matching().map(|p| &p.repeated).union(),
        });
        let mut unions = lock();
        if unions.len() >= UNIONS_KEPT {
            unions.clear();
        }
        unions.insert(prefix.into(), union.clone());
        union
    }

    /// Runs a search; `None` when nothing can match (an unknown status, type or seller).
    pub fn search(&self, q: &Request) -> Found {
        let none = Found {
            total: 0,
            rowids: Vec::new(),
            walk: None,
        };
        let Some(status) = self.statuses.get(q.status) else {
            return none;
        };
        let mut filters: Vec<&RoaringBitmap> = vec![&self.visible[status as usize]];
        if let Some(t) = q.listing_type {
            match self.types.get(t) {
                Some(t) => filters.push(&self.by_type[t as usize]),
                None => return none,
            }
        }
        if let Some(s) = q.seller_id {
            match self.sellers.get(s) {
                Some(s) => filters.push(&self.by_seller[s as usize]),
                None => return none,
            }
        }
        let mut words: Vec<Word> = q.words.iter().map(|w| self.word(w)).collect();
        // The smallest sets first: every intersection after them is cheap.
        words.sort_by_key(|w| w.all().len());
        let mut matches = words[0].all() & filters[0];
        for w in &words[1..] {
            matches &= w.all();
        }
        for f in &filters[1..] {
            matches &= *f;
        }
        if q.min_price.is_some() || q.max_price.is_some() {
            let (lo, hi) = (
                q.min_price.unwrap_or(i64::MIN),
                q.max_price.unwrap_or(i64::MAX),
            );
            matches.retain(|r| (lo..=hi).contains(&self.prices[r as usize]));
        }
        let total = matches.len();
        match q.order {
            Order::Newest => Found {
                total,
                rowids: self.newest(&matches, q.after.map(|a| a.0), 0, q.take),
                walk: None,
            },
            Order::Relevance => Found {
                total,
                rowids: self.relevant(&matches, &words, q.offset, q.take),
                walk: None,
            },
            Order::PriceAsc | Order::PriceDesc => {
                // Walking the price index visits about take / density rows (each a SQLite
                // step, ~0.3 µs); sorting here touches every match (~0.02 µs each, plus the sort).
                let visible = self.visible[status as usize].len().max(1);
                let walk_steps = (q.take as u64 + 1) * visible / total.max(1);
                if total > 4096 && walk_steps * 15 < total {
                    return Found {
                        total,
                        rowids: Vec::new(),
                        walk: Some(matches),
                    };
                }
                Found {
                    total,
                    rowids: self.by_price(&matches, q.order == Order::PriceDesc, q.after, q.take),
                    walk: None,
                }
            }
        }
    }

    /// The newest `take` rows of `set` after skipping `skip`, older than `before` (a key).
    fn newest(
        &self,
        set: &RoaringBitmap,
        before: Option<u128>,
        skip: u64,
        take: usize,
    ) -> Vec<i64> {
        let older = |r: &u32| before.is_none_or(|b| self.keys[*r as usize] < b);
        let want = skip as usize + take;
        // Rows out of rowid order: few; sorted by key, newest first.
        let mut odd: Vec<u32> = if self.disorder.is_empty() {
            Vec::new()
        } else {
            (set & &self.disorder).iter().filter(older).collect()
        };
        odd.sort_unstable_by_key(|r| std::cmp::Reverse(self.keys[*r as usize]));
        let ordered_storage;
        let ordered = if odd.is_empty() && self.disorder.is_empty() {
            set
        } else {
            ordered_storage = set - &self.disorder;
            &ordered_storage
        };
        let mut out: Vec<u32> = Vec::with_capacity(want.min(set.len() as usize));
        let mut odd = odd.into_iter().peekable();
        for r in ordered.iter().rev().filter(older) {
            if out.len() >= want {
                break;
            }
            let key = self.keys[r as usize];
            while let Some(o) = odd.next_if(|o| self.keys[*o as usize] > key) {
                if out.len() < want {
                    out.push(o);
                }
            }
            if out.len() < want {
                out.push(r);
            }
        }
        out.extend(odd.take(want.saturating_sub(out.len())));
        out.into_iter().skip(skip as usize).map(i64::from).collect()
    }

    /// `take` rows of `set` by relevance after skipping `skip`. Each of the (up to three
    /// rarest) query words is worth its idf once, twice if it is in the title or repeats,
    /// three times if both; rows are grouped by score, groups taken best first, each newest
    /// first.
    fn relevant(
        &self,
        set: &RoaringBitmap,
        words: &[Word],
        mut skip: u64,
        take: usize,
    ) -> Vec<i64> {
        // `words` is rarest first. Every match has every word: the levels decide the rest.
        let graded: Vec<([RoaringBitmap; 3], f64)> = words
            .iter()
            .take(3)
            .map(|w| {
                let p = w.postings();
                let title = set & &p.title;
                let repeated = set & &p.repeated;
                let both = &title & &repeated;
                let one = &title ^ &repeated;
                let none = set - &(&title | &repeated);
                ([none, one, both], w.idf)
            })
            .collect();
        // Every assignment of a level to each graded word, best first.
        let mut classes: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), 0.0)];
        for (_, idf) in &graded {
            classes = classes
                .into_iter()
                .flat_map(|(levels, score)| {
                    (0..3).map(move |l| {
                        let mut levels = levels.clone();
                        levels.push(l);
                        (levels, score + idf * l as f64)
                    })
                })
                .collect();
        }
        classes.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut out = Vec::with_capacity(take);
        let mut i = 0;
        while i < classes.len() && out.len() < take {
            // Classes of equal score form one group, ordered newest first as a whole.
            let score = classes[i].1;
            let mut group = RoaringBitmap::new();
            while i < classes.len() && (classes[i].1 - score).abs() < 1e-9 {
                let levels = &classes[i].0;
                let mut class = match graded.first() {
                    Some((sets, _)) => sets[levels[0]].clone(),
                    None => set.clone(),
                };
                for (k, (sets, _)) in graded.iter().enumerate().skip(1) {
                    class &= &sets[levels[k]];
                }
                group |= class;
                i += 1;
            }
            let n = group.len();
            if skip >= n {
                skip -= n;
                continue;
            }
            out.extend(self.newest(&group, None, skip, take - out.len()));
            skip = 0;
        }
        out
    }

    /// `take` rows of a (small) `set` by price then id, after `after` (key, price).
    fn by_price(
        &self,
        set: &RoaringBitmap,
        desc: bool,
        after: Option<(u128, i64)>,
        take: usize,
    ) -> Vec<i64> {
        let mut rows: Vec<(i64, u128, u32)> = set
            .iter()
            .map(|r| (self.prices[r as usize], self.keys[r as usize], r))
            .filter(|(price, key, _)| match after {
                None => true,
                Some((k, p)) if desc => (*price, *key) < (p, k),
                Some((k, p)) => (*price, *key) > (p, k),
            })
            .collect();
        let take = take.min(rows.len());
        if take == 0 {
            return Vec::new();
        }
        if desc {
            rows.select_nth_unstable_by(take - 1, |a, b| b.cmp(a));
            rows.truncate(take);
            rows.sort_unstable_by(|a, b| b.cmp(a));
        } else {
            rows.select_nth_unstable(take - 1);
            rows.truncate(take);
            rows.sort_unstable();
        }
        rows.into_iter().map(|(_, _, r)| i64::from(r)).collect()
    }
}

fn grow(sets: &mut Vec<RoaringBitmap>, i: u32) {
    if sets.len() <= i as usize {
        sets.resize_with(i as usize + 1, RoaringBitmap::new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_without_diacritics() {
        let w: Vec<String> = words("Crème brûlée, CAFÉ-au-lait 42x ü").collect();
        assert_eq!(w, ["creme", "brulee", "cafe", "au", "lait", "42x", "u"]);
        // Decomposed input (e + combining acute) is the same word.
        assert_eq!(words("Cafe\u{301}").collect::<Vec<_>>(), ["cafe"]);
    }
}
