//! A deterministic marketplace for the catalog scenarios (issue 4): ~20,000 sellers and
//! 1,000,000 listings with titles and descriptions drawn from word lists with Zipf-like
//! frequencies (a few words are everywhere, most are rare; some carry accents, like `Café`),
//! log-normal-ish prices, both listing types and mostly active statuses.
//!
//! Everything comes from one seed through SplitMix64, so two runs (or two machines) build the
//! same catalog byte for byte. `SOUK_BENCH_LISTINGS=N` scales it (e.g. 50000 for a quick try);
//! sellers scale with it (one per 50 listings).

use serde::Serialize;
use souk::bus::Envelope;
use souk::services::catalog::projector::CatalogEvent;
use std::time::{Duration, UNIX_EPOCH};

pub const SEED: u64 = 0x500C_CA7A_1060;
pub const DEFAULT_LISTINGS: usize = 1_000_000;

/// How many listings to generate: `SOUK_BENCH_LISTINGS`, else 1,000,000 (bounded).
pub fn listings_wanted() -> anyhow::Result<usize> {
    match std::env::var("SOUK_BENCH_LISTINGS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1_000..=5_000_000).contains(&n) => Ok(n),
            _ => anyhow::bail!("SOUK_BENCH_LISTINGS takes 1000 to 5000000, not `{v}`"),
        },
        Err(_) => Ok(DEFAULT_LISTINGS),
    }
}

/// SplitMix64: tiny, fast, and good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

/// Samples ranks 0..n with probability ∝ 1 / (rank + 1)^s.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("a non-empty distribution");
        let u = rng.f64() * total;
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

const NOUNS: &[&str] = &[
    "bike",
    "chair",
    "table",
    "lamp",
    "sofa",
    "camera",
    "guitar",
    "phone",
    "laptop",
    "jacket",
    "boots",
    "watch",
    "desk",
    "bed",
    "stroller",
    "tent",
    "kayak",
    "drill",
    "ladder",
    "mirror",
    "rug",
    "vase",
    "kettle",
    "blender",
    "espresso",
    "headphones",
    "speaker",
    "monitor",
    "keyboard",
    "printer",
    "tablet",
    "console",
    "skateboard",
    "snowboard",
    "skis",
    "helmet",
    "backpack",
    "suitcase",
    "handbag",
    "wallet",
    "sunglasses",
    "dress",
    "shirt",
    "jeans",
    "sweater",
    "coat",
    "scarf",
    "sneakers",
    "sandals",
    "apartment",
    "studio",
    "room",
    "garage",
    "parking",
    "car",
    "scooter",
    "motorcycle",
    "van",
    "trailer",
    "boat",
    "piano",
    "violin",
    "drums",
    "amplifier",
    "microphone",
    "turntable",
    "vinyl",
    "lens",
    "tripod",
    "drone",
    "projector",
    "fridge",
    "freezer",
    "oven",
    "microwave",
    "dishwasher",
    "washer",
    "dryer",
    "heater",
    "fan",
    "bookshelf",
    "wardrobe",
    "dresser",
    "cabinet",
    "bench",
    "stool",
    "crib",
    "puzzle",
    "painting",
    "poster",
    "frame",
    "clock",
    "plant",
    "grill",
    "mower",
    "saw",
    "toolbox",
    "wheels",
    "tyres",
    "sofa-bed",
    "armchair",
    "cushion",
    "curtains",
    "duvet",
    "pillow",
    "cot",
    "highchair",
    "trampoline",
    "aquarium",
    "cage",
    "saddle",
    "racket",
    "treadmill",
    "dumbbells",
    "barbell",
    "rowing",
    "easel",
    "sewing",
    "loom",
    "typewriter",
    "gramophone",
    "radio",
    "television",
    "router",
    "charger",
    "battery",
    "ring",
    "necklace",
    "bracelet",
    "earrings",
    "brooch",
    "cufflinks",
];

const ADJECTIVES: &[&str] = &[
    "vintage",
    "modern",
    "antique",
    "new",
    "used",
    "classic",
    "compact",
    "large",
    "small",
    "portable",
    "wireless",
    "electric",
    "handmade",
    "wooden",
    "leather",
    "steel",
    "ceramic",
    "glass",
    "cotton",
    "wool",
    "silk",
    "folding",
    "adjustable",
    "ergonomic",
    "professional",
    "rare",
    "original",
    "limited",
    "refurbished",
    "mint",
    "retro",
    "minimalist",
    "rustic",
    "industrial",
    "scandinavian",
    "mid-century",
    "oversized",
    "lightweight",
    "heavy-duty",
    "waterproof",
    "solar",
    "digital",
    "analog",
    "acoustic",
    "smart",
    "cordless",
    "foldable",
    "stackable",
    "ergonomic",
    "sturdy",
    "elegant",
    "cozy",
    "spacious",
    "bright",
    "quiet",
    "furnished",
    "unfurnished",
    "signed",
    "collectible",
    "boxed",
];

const COLORS: &[&str] = &[
    "black",
    "white",
    "red",
    "blue",
    "green",
    "grey",
    "silver",
    "gold",
    "brown",
    "beige",
    "pink",
    "yellow",
    "orange",
    "purple",
    "navy",
    "teal",
    "ivory",
    "olive",
    "burgundy",
    "turquoise",
];

/// Accented words (and places), so diacritic folding is exercised: `cafe` must find `Café`.
const ACCENTED: &[&str] = &[
    "Café",
    "crème",
    "brûlée",
    "naïve",
    "façade",
    "résumé",
    "Zürich",
    "São",
    "Málaga",
    "piñata",
    "jalapeño",
    "déjà",
    "soufflé",
    "fiancée",
    "coupé",
    "protégé",
    "entrée",
    "rosé",
    "Müller",
    "Ångström",
    "Øresund",
    "Kraków",
    "Łódź",
    "señor",
    "crêpe",
    "pâtisserie",
    "château",
    "Genève",
    "Bogotá",
    "Curaçao",
];

/// The glue of descriptions; the head of this list is in nearly every one.
const FILLER: &[&str] = &[
    "the",
    "and",
    "with",
    "in",
    "for",
    "condition",
    "a",
    "of",
    "great",
    "excellent",
    "works",
    "to",
    "perfectly",
    "comes",
    "original",
    "box",
    "pickup",
    "only",
    "delivery",
    "available",
    "price",
    "negotiable",
    "smoke",
    "free",
    "home",
    "pet",
    "minor",
    "scratches",
    "like",
    "never",
    "selling",
    "because",
    "moving",
    "upgrade",
    "includes",
    "manual",
    "cable",
    "cash",
    "local",
    "shipping",
    "possible",
    "barely",
    "clean",
    "well",
    "maintained",
    "serviced",
    "recently",
    "warranty",
    "receipt",
    "gift",
    "unwanted",
    "spare",
    "parts",
    "repair",
    "missing",
    "fully",
    "tested",
    "offers",
    "welcome",
    "first",
    "come",
    "served",
    "weekend",
    "evenings",
    "near",
    "station",
    "city",
    "centre",
    "collection",
    "bundle",
    "set",
    "pair",
    "size",
    "fits",
    "kids",
    "adults",
    "garden",
    "kitchen",
    "office",
    "bedroom",
    "living",
    "balcony",
    "storage",
    "dimensions",
    "height",
    "width",
    "depth",
    "weight",
    "year",
    "old",
    "months",
    "lightly",
    "worn",
    "stains",
    "faded",
    "sturdy",
    "dog",
    "cat",
    "lovers",
    "student",
    "discount",
];

const FIRST_NAMES: &[&str] = &[
    "Ana",
    "José",
    "Zoë",
    "Chloé",
    "Björn",
    "Søren",
    "Łukasz",
    "Renée",
    "François",
    "Amélie",
    "Jürgen",
    "Noémie",
    "Ömer",
    "Ines",
    "Mateo",
    "Lucía",
    "Ada",
    "Grace",
    "Linus",
    "Yuki",
    "Priya",
    "Omar",
    "Fatima",
    "Leila",
    "Sven",
    "Ingrid",
    "Paolo",
    "Giulia",
    "Dmitri",
    "Olga",
    "Kwame",
    "Amara",
    "Hiro",
    "Mei",
    "Tomás",
    "Inés",
    "Nadia",
    "Elif",
    "Chiara",
    "Rafael",
];

const LAST_NAMES: &[&str] = &[
    "García",
    "Müller",
    "Øster",
    "Nowak",
    "Dubois",
    "Rossi",
    "Smith",
    "Jones",
    "Kowalski",
    "Fernández",
    "Schröder",
    "Lindqvist",
    "Yılmaz",
    "Novák",
    "Papadopoulos",
    "Costa",
    "Silva",
    "Tanaka",
    "Kim",
    "Nguyen",
    "Okafor",
    "Mensah",
    "Haddad",
    "Cohen",
    "Ivanova",
    "Petrov",
    "Bianchi",
    "Martín",
    "López",
    "Håkansson",
    "Byrne",
    "O'Neill",
    "Larsen",
    "Virtanen",
    "Horváth",
    "Dvořák",
    "Açıkgöz",
    "Ruiz",
    "Moreau",
    "Lefèvre",
];

const SYLLABLES: &[&str] = &[
    "ka", "ro", "vex", "ta", "lu", "mi", "zor", "ne", "qua", "bri", "sto", "fel", "dar", "io",
    "pix", "mon", "tri", "sa", "vel", "ux", "gra", "no", "len", "ko", "zi", "mar", "tek", "ly",
];

/// The word classes a listing draws from. Brands are synthetic (`Korvexta`), from the
/// syllables: thousands of them, so the tail of the vocabulary is really rare.
pub struct Vocabulary {
    pub brands: Vec<String>,
    nouns: Zipf,
    adjectives: Zipf,
    colors: Zipf,
    accented: Zipf,
    filler: Zipf,
    brand_zipf: Zipf,
}

impl Vocabulary {
    pub fn new(rng: &mut Rng, brands: usize) -> Vocabulary {
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::with_capacity(brands);
        // Bounded: the syllable space (28^3 + 28^4 …) is far larger than what is asked.
        for _ in 0..brands * 20 {
            if list.len() == brands {
                break;
            }
            let n = 2 + rng.below(3);
            let mut w: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            if let Some(first) = w.get(..1) {
                w = first.to_uppercase() + &w[1..];
            }
            if seen.insert(w.to_lowercase()) {
                list.push(w);
            }
        }
        Vocabulary {
            nouns: Zipf::new(NOUNS.len(), 1.0),
            adjectives: Zipf::new(ADJECTIVES.len(), 1.0),
            colors: Zipf::new(COLORS.len(), 1.0),
            accented: Zipf::new(ACCENTED.len(), 1.0),
            filler: Zipf::new(FILLER.len(), 1.1),
            brand_zipf: Zipf::new(list.len(), 1.05),
            brands: list,
        }
    }

    fn noun(&self, rng: &mut Rng) -> &'static str {
        NOUNS[self.nouns.sample(rng)]
    }
    fn adjective(&self, rng: &mut Rng) -> &'static str {
        ADJECTIVES[self.adjectives.sample(rng)]
    }
    fn color(&self, rng: &mut Rng) -> &'static str {
        COLORS[self.colors.sample(rng)]
    }
    fn accented(&self, rng: &mut Rng) -> &'static str {
        ACCENTED[self.accented.sample(rng)]
    }
    fn filler(&self, rng: &mut Rng) -> &'static str {
        FILLER[self.filler.sample(rng)]
    }
    fn brand(&self, rng: &mut Rng) -> &str {
        &self.brands[self.brand_zipf.sample(rng)]
    }

    fn title(&self, rng: &mut Rng) -> String {
        let mut words: Vec<&str> = Vec::with_capacity(6);
        if rng.chance(0.5) {
            words.push(self.adjective(rng));
        }
        if rng.chance(0.3) {
            words.push(self.color(rng));
        }
        if rng.chance(0.6) {
            words.push(self.brand(rng));
        }
        words.push(self.noun(rng));
        if rng.chance(0.05) {
            words.push(self.accented(rng));
        }
        if rng.chance(0.15) {
            words.push("for");
            words.push(self.noun(rng));
        }
        let mut t = words.join(" ");
        if let Some(first) = t.get(..1) {
            t = first.to_uppercase() + &t[1..];
        }
        t
    }

    fn description(&self, rng: &mut Rng) -> String {
        let n = 12 + rng.below(34);
        let mut d = String::with_capacity(n * 8);
        for i in 0..n {
            let p = rng.f64();
            let w: std::borrow::Cow<str> = if p < 0.45 {
                self.filler(rng).into()
            } else if p < 0.65 {
                self.noun(rng).into()
            } else if p < 0.80 {
                self.adjective(rng).into()
            } else if p < 0.85 {
                self.color(rng).into()
            } else if p < 0.95 {
                self.brand(rng).to_string().into()
            } else if p < 0.97 {
                self.accented(rng).into()
            } else {
                format!("{}", 1990 + rng.below(36)).into()
            };
            if i > 0 {
                d.push(if rng.chance(0.08) { '.' } else { ' ' });
                if d.ends_with('.') {
                    d.push(' ');
                }
            }
            d.push_str(&w);
        }
        d.push('.');
        d
    }
}

/// A seller is a user exactly as the users service publishes it.
pub type Seller = souk::services::users::User;

/// A Listing, as `listings` publishes it.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub id: String,
    pub seller_id: String,
    pub title: String,
    pub description: String,
    pub listing_type: &'static str,
    pub price: i64,
    pub currency: &'static str,
    pub quantity: i64,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

pub struct Market {
    pub sellers: Vec<Seller>,
    pub listings: Vec<Listing>,
    /// Sellers by how many listings they have (most first), for seller-filtered queries.
    pub sellers_by_size: Vec<usize>,
}

/// 2024-11-21T00:00:00Z: listings are spread over the two years after it.
const START_MS: u64 = 1_732_147_200_000;
const SPAN_MS: u64 = 2 * 365 * 86_400_000;

/// A UUIDv7 at `ms` with bits from `rng`, as a Souk id (`lst_…`): ids sort like their time.
fn id_at(prefix: &str, ms: u64, rng: &mut Rng) -> String {
    let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    let v = (u128::from(ms) << 80)
        | (0x7 << 76)
        | (((r >> 64) & 0xfff) << 64)
        | (0b10 << 62)
        | (r & ((1u128 << 62) - 1));
    souk::ids::encode(prefix, uuid::Uuid::from_u128(v))
}

fn rfc3339(ms: u64) -> String {
    souk::clock::rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

pub fn generate(listings: usize) -> Market {
    let mut rng = Rng::new(SEED);
    let vocabulary = Vocabulary::new(&mut rng, (listings / 50).clamp(500, 20_000));
    let n_sellers = (listings / 50).clamp(20, 20_000);
    let sellers: Vec<Seller> = (0..n_sellers)
        .map(|i| {
            // Sellers sign up over the month before the first listing.
            let ms = START_MS - 30 * 86_400_000 + (i as u64 * 30 * 86_400_000 / n_sellers as u64);
            let name = format!(
                "{} {}",
                FIRST_NAMES[rng.below(FIRST_NAMES.len())],
                LAST_NAMES[rng.below(LAST_NAMES.len())]
            );
            Seller {
                id: id_at("usr", ms, &mut rng),
                email: Some(format!("seller{i}@example.test")),
                name,
                bio: String::new(),
                enabled: true,
                created_at: rfc3339(ms),
                updated_at: rfc3339(ms),
                version: 1,
            }
        })
        .collect();
    // Listings per seller follow a milder Zipf: a few shops, many occasional sellers. The rank
    // → seller mapping is shuffled so big sellers are not all the oldest.
    let seller_zipf = Zipf::new(n_sellers, 0.8);
    let mut rank_to_seller: Vec<usize> = (0..n_sellers).collect();
    for i in (1..n_sellers).rev() {
        rank_to_seller.swap(i, rng.below(i + 1));
    }
    let step = SPAN_MS / listings as u64;
    let listings: Vec<Listing> = (0..listings)
        .map(|i| {
            let ms = START_MS + i as u64 * step + rng.below(step.max(1) as usize) as u64;
            let seller = &sellers[rank_to_seller[seller_zipf.sample(&mut rng)]];
            let title = vocabulary.title(&mut rng);
            let description = vocabulary.description(&mut rng);
            // Log-uniform from 1.00 to 20,000.00, mostly round figures.
            let major = (20_000f64.powf(rng.f64())).round().max(1.0) as i64;
            let price = match rng.below(4) {
                0 => major * 100 - 1,
                1 => major * 100 + 50,
                _ => major * 100,
            };
            let status = match rng.below(100) {
                0..85 => "active",
                85..89 => "reserved",
                89..97 => "sold",
                _ => "archived",
            };
            Listing {
                id: id_at("lst", ms, &mut rng),
                seller_id: seller.id.clone(),
                title,
                description,
                listing_type: if rng.chance(0.85) { "sale" } else { "rent" },
                price,
                currency: if rng.chance(0.8) { "EUR" } else { "USD" },
                quantity: if rng.chance(0.9) {
                    1
                } else {
                    2 + rng.below(9) as i64
                },
                status,
                created_at: rfc3339(ms),
                updated_at: rfc3339(ms),
                version: 1,
            }
        })
        .collect();
    let mut counts = vec![0usize; n_sellers];
    let index: std::collections::HashMap<&str, usize> = sellers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for l in &listings {
        counts[index[l.seller_id.as_str()]] += 1;
    }
    let mut sellers_by_size: Vec<usize> = (0..n_sellers).collect();
    sellers_by_size.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
    Market {
        sellers,
        listings,
        sellers_by_size,
    }
}

impl Market {
    /// `user.created` for seller `i`: the event `users` would have published.
    pub fn seller_event(&self, i: usize) -> Envelope {
        let s = &self.sellers[i];
        let ms = souk::clock::parse_rfc3339(&s.created_at)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(START_MS, |d| d.as_millis() as u64);
        let mut rng = Rng::new(SEED ^ 0xA11CE ^ i as u64);
        Envelope {
            id: id_at("evt", ms, &mut rng),
            kind: "user.created".into(),
            aggregate: "user".into(),
            aggregate_id: s.id.clone(),
            version: 1,
            occurred_at: s.created_at.clone(),
            correlation_id: None,
            causation_id: None,
            actor: s.id.clone(),
            data: serde_json::to_value(s).expect("a seller serialises"),
        }
    }

    /// `listing.created` for listing `i` (one event per listing, carrying its final state).
    pub fn listing_event(&self, i: usize) -> Envelope {
        let l = &self.listings[i];
        let ms = START_MS + i as u64 * (SPAN_MS / self.listings.len() as u64);
        let mut rng = Rng::new(SEED ^ 0xB0B ^ ((i as u64) << 20));
        Envelope {
            id: id_at("evt", ms, &mut rng),
            kind: "listing.created".into(),
            aggregate: "listing".into(),
            aggregate_id: l.id.clone(),
            version: 1,
            occurred_at: l.created_at.clone(),
            correlation_id: None,
            causation_id: None,
            actor: l.seller_id.clone(),
            data: serde_json::to_value(l).expect("a listing serialises"),
        }
    }

    /// Every event of the market in stream order: (envelope, stream key, stream sequence), as
    /// the rebuild hands them to `apply_batch` (users first, then listings), `batch` at a time.
    pub fn event_batches(
        &self,
        batch: usize,
    ) -> impl Iterator<Item = Vec<(CatalogEvent, String, u64)>> + '_ {
        let users = self.sellers.len();
        let total = users + self.listings.len();
        (0..total.div_ceil(batch)).map(move |b| {
            let range = b * batch..((b + 1) * batch).min(total);
            range
                .map(|k| {
                    if k < users {
                        let e = (&self.seller_event(k)).into();
                        (e, "user".to_string(), k as u64 + 1)
                    } else {
                        let i = k - users;
                        let e = (&self.listing_event(i)).into();
                        (e, "listing".to_string(), i as u64 + 1)
                    }
                })
                .collect()
        })
    }
}

/// The words of the generated text that queries use, by how many listings contain them: the
/// generator knows exactly, so query classes (common, medium, rare) are picked by frequency,
/// not by guess.
pub struct Terms {
    pub common: Vec<String>,
    pub medium: Vec<String>,
    pub rare: Vec<String>,
    pub accented: Vec<String>,
    /// Document frequency of every term above, as a share of all listings.
    pub share: std::collections::HashMap<String, f64>,
}

pub fn terms(market: &Market) -> Terms {
    use std::collections::HashMap;
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    for l in &market.listings {
        seen.clear();
        for w in l
            .title
            .split(|c: char| !c.is_alphanumeric())
            .chain(l.description.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| w.len() > 2 && !w.bytes().all(|b| b.is_ascii_digit()))
        {
            let w = w.to_lowercase();
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
        for w in seen.drain(..) {
            *df.entry(w).or_default() += 1;
        }
    }
    let n = market.listings.len() as f64;
    let fillers: std::collections::HashSet<&str> = FILLER.iter().copied().collect();
    let mut words: Vec<(String, usize)> = df
        .into_iter()
        .filter(|(w, _)| !fillers.contains(w.as_str()))
        .collect();
    words.sort();
    // The `k` words whose share of listings is nearest `target` (on a log scale).
    let pick = |target: f64, k: usize| -> Vec<String> {
        let mut by: Vec<&(String, usize)> = words.iter().collect();
        by.sort_by(|a, b| {
            let da = ((a.1 as f64 / n) / target).ln().abs();
            let db = ((b.1 as f64 / n) / target).ln().abs();
            da.partial_cmp(&db).unwrap().then(a.0.cmp(&b.0))
        });
        by.into_iter().take(k).map(|(w, _)| w.clone()).collect()
    };
    let share = |w: &str| {
        words
            .iter()
            .find(|(x, _)| x == w)
            .map_or(0.0, |(_, c)| *c as f64 / n)
    };
    let common = pick(0.15, 6);
    let medium = pick(0.005, 12);
    let rare = pick(0.00005, 24);
    let accented = ["café", "crème", "zürich", "château"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    let mut shares = HashMap::new();
    for w in common.iter().chain(&medium).chain(&rare) {
        shares.insert(w.clone(), share(w));
    }
    for w in &accented {
        shares.insert(w.clone(), share(w));
    }
    Terms {
        common,
        medium,
        rare,
        accented,
        share: shares,
    }
}
