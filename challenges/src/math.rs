//! GSM8K-style math word problems (PROTOCOL.md §13.4).
//!
//! Nine template families. Every number is drawn as an integer from the
//! problem's stream ([`ChallengeRng`]); every answer is an exact [`Rational`],
//! nonzero, built backwards from chosen divisors so that word problems have
//! integer answers (arithmetic and linear equations may have small
//! fractions). `s` below is the difficulty level `1..=10`; `/` in draw bounds
//! is integer division; `range(lo, hi)` is inclusive.
//!
//! ## Stream usage
//!
//! 1. `family = below(9)` indexing [`Family::ALL`]:
//!    rates, percent, ratio, money, ages, units, work, arithmetic, linear.
//! 2. The family's draws, in the order listed below. "distinct(pool, k)"
//!    means k times: take and remove `rest[below(len(rest))]` from the
//!    remaining pool (original order kept). `variant = below(3)` picks the
//!    phrasing and never changes the numbers.
//! 3. Word families (rates .. work) then run the tail: `shuffle(facts)` (the
//!    order-free fact sentences, in the order the family lists them), then
//!    `coin()`; if true, `pick(FILLERS)` goes after the lead sentences (first
//!    when there are none), before the facts.
//!    Arithmetic and linear have no tail.
//!
//! Families (draws, in order; params; answer):
//! - rates: `pick(NAMES)`, `pick(RATE_VERBS)`, `mode = below(2)`.
//!   Mode 0: `legs = 1 + s/4`; per leg `speed = range(4, 10+6s)`,
//!   `hours = range(1, 2+s/3)`; `variant`. Answer: total km
//!   `sum speed_i*hours_i`. Mode 1: `speed_1, hours_1, speed_2, hours_2` as
//!   above, `variant`; `distance_km = speed_1*hours_1 + speed_2*hours_2`;
//!   answer: hours `hours_1 + (distance_km - speed_1*hours_1)/speed_2`.
//! - percent: `pick(NAMES)`, `pick(SHOP_ITEMS)`, `mode = below(3)`.
//!   Mode 0 (discount): `m = range(1, 3+3s)`, `price = 20m`,
//!   `discount = 5*range(1, 12)`, `qty = 1` if `s < 4` else
//!   `range(2, 1+s/2)`, `coupon = range(1, 7)` if `s >= 7` else 0,
//!   `variant`; answer `qty*price*(100-discount)/100 - coupon`.
//!   Mode 1 (change): `m = range(1, 2+2s)`, `old = 20m`, `up = coin()`,
//!   `pct = 5*range(1, up ? 4+2s : 18)`, `new = old*(100 +/- pct)/100`,
//!   `variant`; answer `|new-old|*100/old` (= pct).
//!   Mode 2 (split with tip/tax): `m = range(1, 2+s)`,
//!   `people = range(2, 2+s/2)`, `rate = pick([10, 15, 20, 25])`,
//!   `variant`; `bill = 20*m*people`; answer `bill*(100+rate)/100/people`.
//! - ratio: `n = 2` if `s <= 4` else 3; `distinct(NAMES, n)`,
//!   `pick(RATIO_OBJECTS)`, `mode = below(2)`, `ratio_i = range(1, 3+s/2)`
//!   for each person, `unit = range(2, 4+3s)`, `who = below(n)`,
//!   `variant`. Mode 0: `total = unit*sum ratio`; answer
//!   `total*ratio_who/sum ratio`. Mode 1: `known_amount = unit*ratio_who`;
//!   answer `known_amount*sum ratio/ratio_who`.
//! - money: `pick(NAMES)`, `mode = below(2)`, `n = 1 + s/3` item kinds,
//!   `distinct(SHOP_ITEMS, n)`; per item `qty = range(1, 2+s)`,
//!   `price = range(1, 3+4s)`; `variant`. Mode 0: answer total
//!   `sum qty_i*price_i`. Mode 1: `bill` = the smallest of BILLS greater than
//!   the total (no draw); answer `bill - total`.
//! - ages: `distinct(NAMES, 3)` (A, B, C), `mode = below(3)`.
//!   Mode 0: `a = range(2, 8+2s)`, `older_by = range(1, 5+2s)`,
//!   `years_ahead = range(1, 3+s)`, `people = 3` if `s >= 6` else 2, and
//!   when 3, `younger_than_b_by = range(1, a+older_by-1)`; `variant`.
//!   Answer: sum of the ages (A = a, B = a+older_by, C = B-younger_than_b_by)
//!   in `years_ahead` years.
//!   Mode 1: `years_ago = range(1, 2+s)`, `a_then = range(1, 3+s)`,
//!   `factor = range(2, 4+s/3)`, `years_ahead = range(1, 2+s)` if `s >= 4`
//!   else 0, `variant`; `age_a = a_then + years_ago`; answer B's age
//!   `factor*(age_a-years_ago) + years_ago + years_ahead`.
//!   Mode 2: `a = range(2, 8+2s)`, `difference = range(1, 5+2s)`,
//!   `ask_older = coin()`, `years_ahead = range(1, 2+s)` if `s >= 5` else 0,
//!   `variant`; `sum = 2a + difference`; answer
//!   `(sum +/- difference)/2 + years_ahead`.
//! - units: `pick(NAMES)`, `mode = below(4)`.
//!   Mode 0 (time): `count = range(1, 1+s/2)`, `hours = range(1, 3)`,
//!   `minutes = range(1, 59)`, `variant`; answer
//!   `count*(60 hours + minutes)` minutes.
//!   Mode 1 (length): `km = range(1, 2+s)`, `m = 50*range(1, 19)` if
//!   `s <= 5` else `range(1, 999)`, `laps = range(1, 1+s/2)`, `variant`;
//!   answer `laps*(1000 km + m)` meters.
//!   Mode 2 (mass): `portion_grams = 25*range(2, 10)`,
//!   `count = range(2, 4+3s)`, `variant`; `kilograms, grams` = the total
//!   `portion_grams*count` split at 1000; answer
//!   `(1000 kilograms + grams)/portion_grams`.
//!   Mode 3 (dozen): `dozens = range(1, 2+s)`, `used = range(1, 12 dozens-1)`,
//!   `variant`; answer `12 dozens - used`.
//! - work: `pick(PRODUCTS)`, `pick(AGENTS)`, `mode = below(2)`.
//!   Mode 0: `workers = range(2, 3+s)`, `rate = range(2, 5+3s)`,
//!   `hours = range(1, 8)`, `days = 1` if `s <= 3` else `range(2, 2+s/2)`,
//!   `defective = range(1, workers*rate)` if `s >= 7` else 0, `variant`;
//!   answer `workers*rate*hours*days - defective`.
//!   Mode 1: `groups = 1` if `s <= 4` else 2; per group
//!   `workers = range(1, 2+s)`, `rate = range(2, 5+3s)`; then
//!   `hours = range(1, 2+s)`, `variant`;
//!   `target = hours*sum workers_i*rate_i`; answer
//!   `target/sum workers_i*rate_i`.
//! - arithmetic: an expression with `1 + s` operators and at most
//!   `max_div = 1` (`s <= 6`) or 2 divisions, built by `node(k)`: if
//!   `k == 0`, a leaf `range(1, 5+2s)`; else `op = below(4)` (+, -, *, /;
//!   `/` becomes `*` once `max_div` divisions were chosen), then for `*` and
//!   `/`: left `node(k-1)`, right a leaf `range(2, 9)`; for `+` and `-`:
//!   `split = below(k)`, left `node(split)`, right `node(k-1-split)`. The
//!   whole expression is redrawn while its value is 0. Then `variant`.
//!   Params: the expression in postfix, `("num", v)` and `("op", code)`
//!   with codes 1 +, 2 -, 3 *, 4 /. Answer: its exact value.
//! - linear: `mode = below(3)`, `R = 3+2s`.
//!   Modes 0 and 1: `xn = range(1, R)`, `negative = coin()`,
//!   `xd = range(1, 3)` if `s >= 6` else 1, `x = +/- xn/xd`. Mode 0:
//!   `a = xd*range(1, 2+s/2)`, `b = range(-R, R)`, `c = a x + b`,
//!   `swap = coin()`, `variant`; "a x + b = c"; answer `(c-b)/a`. Mode 1:
//!   `c = range(1, 2+s/2)`, `k = xd*range(1, 2+s/2)`, `a = c+k`,
//!   `b = range(-R, R)`, `e = k x + b`, `swap = coin()`, `variant`;
//!   "a x + b = c x + e"; answer `(e-b)/(a-c)`. Mode 2: `pick(NAMES)`,
//!   `x = range(1, R)`, `a = range(2, 3+s/2)`, `b = range(1, R)`,
//!   `subtract = coin()`, `factor = range(2, 4)` if `s >= 5` else 1,
//!   `variant`; "multiply by a, add (or subtract) b, multiply by factor,
//!   get c"; params `a`, `b` (negative when subtracting), `factor`, `c`;
//!   answer `(c/factor - b)/a`.
//!
//! Shuffled facts (the tail draws `len - 1` times; none for 0 or 1 facts):
//! rates mode 0 variant 2: one per leg, other rates: none; percent mode 0:
//! price, discount, quantity, then the coupon if nonzero; percent mode 1:
//! none; percent mode 2: bill, rate; ratio mode 0: none, mode 1: the known
//! share; money: one per item, in item order; ages mode 0: A's age, B's
//! offset, then C's offset when 3 people; ages modes 1 and 2: two; units
//! modes 0 and 1: none, modes 2 and 3: one; work mode 0: rate, schedule, then
//! defects if nonzero; work mode 1: one per group.
//!
//! Difficulty scaling (`s` = level): rates legs 1 to 3 and speeds up to
//! `10+6s`; percent prices up to `20(3+3s)`, several items from `s = 4` and a
//! coupon step from `s = 7`; ratio 3 people from `s = 5`, larger units;
//! money `1 + s/3` item kinds (1 to 4) with larger quantities and prices;
//! ages larger ages, a third person (mode 0) from `s = 6`, a "years ahead"
//! step from `s = 4` (mode 1) or `s = 5` (mode 2); units more repetitions,
//! larger amounts, arbitrary meters from `s = 6`; work multi-day shifts from
//! `s = 4`, defects from `s = 7`, two worker groups (mode 1) from `s = 5`;
//! arithmetic `1 + s` operators (2 to 11), leaves up to `5+2s`, two divisions
//! from `s = 7`; linear coefficients and solutions grow with `s`, fractional
//! solutions (denominator 2 or 3) from `s = 6`, an extra multiplication
//! (mode 2) from `s = 5`.
//!
//! [`solve`] recomputes the answer from the params alone, by family.
#![forbid(unsafe_code)]

use crate::rational::Rational;
use crate::rng::ChallengeRng;
use crate::Difficulty;

/// Template family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Speed, distance and time.
    Rates,
    /// Discounts, percent change, tip or tax split.
    Percent,
    /// Sharing in a ratio.
    Ratio,
    /// Shopping totals and change.
    Money,
    /// Ages now, ago and ahead.
    Ages,
    /// Hours/minutes, km/m, kg/g, dozens.
    Units,
    /// Production by workers or machines.
    Work,
    /// Nested exact arithmetic with parentheses.
    Arithmetic,
    /// Linear equations in one unknown.
    Linear,
}

impl Family {
    /// Every family, in the order `below(9)` indexes (consensus-critical).
    pub const ALL: [Family; 9] = [
        Family::Rates,
        Family::Percent,
        Family::Ratio,
        Family::Money,
        Family::Ages,
        Family::Units,
        Family::Work,
        Family::Arithmetic,
        Family::Linear,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Rates => "rates",
            Family::Percent => "percent",
            Family::Ratio => "ratio",
            Family::Money => "money",
            Family::Ages => "ages",
            Family::Units => "units",
            Family::Work => "work",
            Family::Arithmetic => "arithmetic",
            Family::Linear => "linear",
        }
    }
}

/// A generated math problem.
#[derive(Debug, Clone, PartialEq)]
pub struct MathProblem {
    pub family: Family,
    /// Named integer parameters, in generation order.
    pub params: Vec<(&'static str, i64)>,
    /// The question text.
    pub question: String,
    /// The exact answer.
    pub answer: Rational,
}

/// First names (consensus-critical: order and spelling feed the text).
pub const NAMES: [&str; 30] = [
    "Ava", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kenji",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Liam", "Maya", "Noah", "Chloe",
];

/// Harmless context sentences (no numbers).
pub const FILLERS: [&str; 8] = [
    "It is a bright and windy day.",
    "Everyone involved is in a good mood.",
    "The nearby cafe is unusually busy.",
    "A radio plays quietly in the background.",
    "Nobody is in a hurry today.",
    "The forecast promises rain later in the week.",
    "A neighbor waves from across the street.",
    "All of this is written down in a small notebook.",
];

/// How a traveller moves (rates).
pub const RATE_VERBS: [&str; 5] = [
    "drives",
    "rides a motorbike",
    "travels by bus",
    "travels by train",
    "cycles",
];

/// Shop items, (singular, plural) (percent, money).
pub const SHOP_ITEMS: [(&str, &str); 12] = [
    ("notebook", "notebooks"),
    ("pen", "pens"),
    ("backpack", "backpacks"),
    ("lamp", "lamps"),
    ("mug", "mugs"),
    ("scarf", "scarves"),
    ("towel", "towels"),
    ("puzzle", "puzzles"),
    ("candle", "candles"),
    ("basket", "baskets"),
    ("plant", "plants"),
    ("poster", "posters"),
];

/// Things shared in a ratio.
pub const RATIO_OBJECTS: [&str; 6] = ["marbles", "stickers", "dollars", "cards", "stamps", "beads"];

/// Things produced (work).
pub const PRODUCTS: [&str; 8] = [
    "toys", "bottles", "chairs", "boxes", "bricks", "shirts", "mugs", "lamps",
];

/// Who produces, (singular, plural) (work).
pub const AGENTS: [(&str, &str); 4] = [
    ("worker", "workers"),
    ("machine", "machines"),
    ("volunteer", "volunteers"),
    ("robot", "robots"),
];

/// Bills a shopper may pay with (money): the smallest one above the total.
pub const BILLS: [i64; 10] = [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

const LEG_SPEED: [&str; 3] = ["speed_1", "speed_2", "speed_3"];
const LEG_HOURS: [&str; 3] = ["hours_1", "hours_2", "hours_3"];
const RATIO: [&str; 3] = ["ratio_1", "ratio_2", "ratio_3"];
const QTY: [&str; 4] = ["qty_1", "qty_2", "qty_3", "qty_4"];
const PRICE: [&str; 4] = ["price_1", "price_2", "price_3", "price_4"];
const WORKERS: [&str; 2] = ["workers_1", "workers_2"];
const RATE: [&str; 2] = ["rate_1", "rate_2"];

/// Generate a problem from the stream (see the module documentation).
pub fn generate(rng: &mut ChallengeRng, difficulty: Difficulty) -> MathProblem {
    let s = i64::from(difficulty.level());
    let family = Family::ALL[rng.below(Family::ALL.len() as u64) as usize];
    let draft = match family {
        Family::Rates => rates(rng, s),
        Family::Percent => percent(rng, s),
        Family::Ratio => ratio(rng, s),
        Family::Money => money(rng, s),
        Family::Ages => ages(rng, s),
        Family::Units => units(rng, s),
        Family::Work => work(rng, s),
        Family::Arithmetic => arithmetic(rng, s),
        Family::Linear => linear(rng, s),
    };
    let Draft {
        params,
        lead,
        mut facts,
        ask,
        answer,
        words,
    } = draft;
    let mut sentences = lead;
    if words {
        rng.shuffle(&mut facts);
        if rng.coin() {
            sentences.push(rng.pick(&FILLERS).to_string());
        }
    }
    sentences.extend(facts);
    sentences.push(ask);
    MathProblem {
        family,
        params,
        question: sentences.join(" "),
        answer,
    }
}

/// A family's output before the shared tail.
struct Draft {
    params: Vec<(&'static str, i64)>,
    /// Sentences in fixed order at the start.
    lead: Vec<String>,
    /// Order-free sentences (shuffled for word families).
    facts: Vec<String>,
    /// The question sentence, last.
    ask: String,
    answer: Rational,
    /// Word family: run the shuffle/filler tail.
    words: bool,
}

impl Draft {
    fn words(
        params: Vec<(&'static str, i64)>,
        lead: Vec<String>,
        facts: Vec<String>,
        ask: String,
        answer: i64,
    ) -> Draft {
        Draft {
            params,
            lead,
            facts,
            ask,
            answer: Rational::int(answer),
            words: true,
        }
    }
}

/// `k` distinct elements: `k` times take and remove `rest[below(len)]`.
fn distinct<T: Copy>(rng: &mut ChallengeRng, pool: &[T], k: usize) -> Vec<T> {
    let mut rest = pool.to_vec();
    (0..k)
        .map(|_| rest.remove(rng.below(rest.len() as u64) as usize))
        .collect()
}

fn variant(rng: &mut ChallengeRng) -> u64 {
    rng.below(3)
}

/// `3 hours`, `1 hour`.
fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn dollars(n: i64) -> String {
    count(n, "dollar", "dollars")
}

/// `A`, `A and B`, `A, B and C`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn rates(rng: &mut ChallengeRng, s: i64) -> Draft {
    let name = *rng.pick(&NAMES);
    let verb = *rng.pick(&RATE_VERBS);
    let mode = rng.below(2) as i64;
    let speed_hi = 10 + 6 * s;
    let hours_hi = 2 + s / 3;
    let mut params = vec![("mode", mode)];
    if mode == 0 {
        let legs = 1 + s / 4;
        params.push(("legs", legs));
        let mut legs_v = Vec::new();
        for i in 0..legs as usize {
            let speed = rng.range(4, speed_hi);
            let hours = rng.range(1, hours_hi);
            params.push((LEG_SPEED[i], speed));
            params.push((LEG_HOURS[i], hours));
            legs_v.push((speed, hours));
        }
        let total: i64 = legs_v.iter().map(|(v, h)| v * h).sum();
        let v = variant(rng);
        let phrase =
            |(sp, h): (i64, i64)| format!("at {sp} km per hour for {}", count(h, "hour", "hours"));
        let (lead, facts, ask) = match v {
            0 => {
                let parts: Vec<String> = legs_v.iter().map(|&l| phrase(l)).collect();
                (
                    vec![format!("{name} {verb} {}.", parts.join(", then "))],
                    vec![],
                    format!("How many kilometers does {name} travel in total?"),
                )
            }
            1 => {
                let mut lead = vec![format!("On a trip, {name} {verb} {}.", phrase(legs_v[0]))];
                for &l in &legs_v[1..] {
                    lead.push(format!("After that, {name} continues {}.", phrase(l)));
                }
                (
                    lead,
                    vec![],
                    format!("What total distance, in km, does {name} cover?"),
                )
            }
            _ => (
                vec![format!("{name} {verb} on a long journey.")],
                legs_v
                    .iter()
                    .map(|&(sp, h)| {
                        format!(
                            "For {} of the journey, the speed is {sp} km/h.",
                            count(h, "hour", "hours")
                        )
                    })
                    .collect(),
                format!("How far, in kilometers, does {name} go altogether?"),
            ),
        };
        Draft::words(params, lead, facts, ask, total)
    } else {
        let s1 = rng.range(4, speed_hi);
        let h1 = rng.range(1, hours_hi);
        let s2 = rng.range(4, speed_hi);
        let h2 = rng.range(1, hours_hi);
        let dist = s1 * h1 + s2 * h2;
        params.extend([
            ("distance_km", dist),
            ("speed_1", s1),
            ("hours_1", h1),
            ("speed_2", s2),
        ]);
        let first = count(h1, "hour", "hours");
        let (lead, ask) = match variant(rng) {
            0 => (
                vec![
                    format!("{name} {verb} to a town {dist} km away."),
                    format!(
                        "{name} goes at {s1} km per hour for the first {first} and then at \
                         {s2} km per hour for the rest of the way."
                    ),
                ],
                "How many hours does the whole trip take?".to_string(),
            ),
            1 => (
                vec![
                    format!("A trip of {dist} kilometers lies ahead of {name}, who {verb}."),
                    format!(
                        "The first {first} are done at {s1} km/h, and the remaining distance \
                         at {s2} km/h."
                    ),
                ],
                format!("How long, in hours, does {name} need for the whole trip?"),
            ),
            _ => (
                vec![
                    format!(
                        "For the first {first} of a {dist} km trip, {name} {verb} at {s1} \
                         kilometers per hour."
                    ),
                    format!("The rest of the distance is covered at {s2} kilometers per hour."),
                ],
                "In total, how many hours does the trip last?".to_string(),
            ),
        };
        Draft::words(params, lead, vec![], ask, h1 + h2)
    }
}

fn percent(rng: &mut ChallengeRng, s: i64) -> Draft {
    let name = *rng.pick(&NAMES);
    let (item, items) = *rng.pick(&SHOP_ITEMS);
    let mode = rng.below(3) as i64;
    let mut params = vec![("mode", mode)];
    match mode {
        0 => {
            let price = 20 * rng.range(1, 3 + 3 * s);
            let discount = 5 * rng.range(1, 12);
            let qty = if s < 4 { 1 } else { rng.range(2, 1 + s / 2) };
            let coupon = if s >= 7 { rng.range(1, 7) } else { 0 };
            let v = variant(rng);
            params.extend([
                ("price", price),
                ("discount_percent", discount),
                ("qty", qty),
                ("coupon", coupon),
            ]);
            let answer = qty * price / 20 * (100 - discount) / 5 - coupon;
            let lead = vec![match v {
                0 => format!("{name} goes shopping for {items}."),
                1 => format!("{name} needs new {items}."),
                _ => format!("A store is having a sale on {items}, and {name} stops by."),
            }];
            let mut facts = vec![
                format!("A {item} normally costs {}.", dollars(price)),
                match v {
                    0 => format!("Everything is {discount}% off today."),
                    1 => format!("The store takes {discount}% off the regular price."),
                    _ => format!("The sale price is {discount}% below the regular price."),
                },
                format!("{name} buys {}.", count(qty, item, items)),
            ];
            if coupon > 0 {
                facts.push(format!(
                    "After the discount, {name} uses a coupon worth {} off the whole purchase.",
                    dollars(coupon)
                ));
            }
            let ask = match v {
                0 => format!("How many dollars does {name} pay?"),
                1 => format!("How much does {name} spend, in dollars?"),
                _ => "What is the final amount paid, in dollars?".to_string(),
            };
            Draft::words(params, lead, facts, ask, answer)
        }
        1 => {
            let old = 20 * rng.range(1, 2 + 2 * s);
            let up = rng.coin();
            let pct = 5 * rng.range(1, if up { 4 + 2 * s } else { 18 });
            let new = if up {
                old + old / 20 * pct / 5
            } else {
                old - old / 20 * pct / 5
            };
            let v = variant(rng);
            params.extend([("old", old), ("new", new)]);
            let (change, verb) = if up {
                ("increase", "rises")
            } else {
                ("decrease", "falls")
            };
            let lead = vec![match v {
                0 => format!(
                    "The price of a {item} {verb} from {} to {}.",
                    dollars(old),
                    dollars(new)
                ),
                1 => format!(
                    "{name}'s savings change from {} last year to {} this year.",
                    dollars(old),
                    dollars(new)
                ),
                _ => format!(
                    "Last month {name}'s club had {old} members; this month it has {new} members."
                ),
            }];
            let what = ["the price", "the savings", "the membership"][v as usize];
            let ask = format!("By what percent did {what} {change}?");
            Draft::words(params, lead, vec![], ask, pct)
        }
        _ => {
            let m = rng.range(1, 2 + s);
            let people = rng.range(2, 2 + s / 2);
            let rate = *rng.pick(&[10, 15, 20, 25]);
            let v = variant(rng);
            let bill = 20 * m * people;
            params.extend([("bill", bill), ("rate_percent", rate), ("people", people)]);
            let answer = m * (100 + rate) / 5;
            let friends = count(people - 1, "friend", "friends");
            let (lead, facts, ask) = match v {
                0 => (
                    vec![format!("{name} and {friends} have dinner together.")],
                    vec![
                        format!("The bill comes to {} before the tip.", dollars(bill)),
                        format!("They leave a {rate}% tip on top of the bill."),
                    ],
                    "They split the total equally. How many dollars does each person pay?"
                        .to_string(),
                ),
                1 => (
                    vec![format!("{name} and {friends} buy {items} for a party.")],
                    vec![
                        format!("The {items} cost {} before tax.", dollars(bill)),
                        format!("A sales tax of {rate}% is added to that price."),
                    ],
                    "If they share the cost equally, how much does each of them pay, in dollars?"
                        .to_string(),
                ),
                _ => (
                    vec![format!("{name} books a boat tour for {people} people.")],
                    vec![
                        format!("The tour costs {}.", dollars(bill)),
                        format!("A service charge of {rate}% is added."),
                    ],
                    "The group divides the total evenly. What is each person's share in dollars?"
                        .to_string(),
                ),
            };
            Draft::words(params, lead, facts, ask, answer)
        }
    }
}

fn ratio(rng: &mut ChallengeRng, s: i64) -> Draft {
    let n = if s <= 4 { 2 } else { 3 };
    let names = distinct(rng, &NAMES, n);
    let obj = *rng.pick(&RATIO_OBJECTS);
    let mode = rng.below(2) as i64;
    let ratios: Vec<i64> = (0..n).map(|_| rng.range(1, 3 + s / 2)).collect();
    let unit = rng.range(2, 4 + 3 * s);
    let who = rng.below(n as u64) as usize;
    let v = variant(rng);
    let sum: i64 = ratios.iter().sum();
    let mut params = vec![("mode", mode), ("people", n as i64)];
    for (i, &r) in ratios.iter().enumerate() {
        params.push((RATIO[i], r));
    }
    params.push(("who", who as i64));
    let people = and_list(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let colon = ratios
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(":");
    let target = names[who];
    if mode == 0 {
        let total = unit * sum;
        params.push(("total", total));
        let lead = vec![match v {
            0 => format!("{people} share {total} {obj} in the ratio {colon}."),
            1 => format!("{total} {obj} are divided among {people} in the ratio {colon}."),
            _ => format!(
                "{people} split {total} {obj} so that their shares are in the ratio {colon}, \
                 in that order."
            ),
        }];
        let ask = match v {
            0 => format!("How many {obj} does {target} get?"),
            1 => format!("How many {obj} does {target} receive?"),
            _ => format!("What is {target}'s share?"),
        };
        Draft::words(params, lead, vec![], ask, unit * ratios[who])
    } else {
        let known = unit * ratios[who];
        params.push(("known_amount", known));
        let lead = vec![match v {
            0 => format!("{people} share some {obj} in the ratio {colon}."),
            1 => format!("Some {obj} are divided among {people} in the ratio {colon}."),
            _ => format!("{people} split a pile of {obj} in the ratio {colon}, in that order."),
        }];
        let facts = vec![format!("{target} ends up with {known} {obj}.")];
        let ask = match v {
            0 => format!("How many {obj} were there in total?"),
            1 => format!("How many {obj} were shared altogether?"),
            _ => format!("How many {obj} did the pile have?"),
        };
        Draft::words(params, lead, facts, ask, known / ratios[who] * sum)
    }
}

fn money(rng: &mut ChallengeRng, s: i64) -> Draft {
    let name = *rng.pick(&NAMES);
    let mode = rng.below(2) as i64;
    let n = (1 + s / 3) as usize;
    let items = distinct(rng, &SHOP_ITEMS, n);
    let mut params = vec![("mode", mode), ("items", n as i64)];
    let mut bought = Vec::new();
    for i in 0..n {
        let qty = rng.range(1, 2 + s);
        let price = rng.range(1, 3 + 4 * s);
        params.push((QTY[i], qty));
        params.push((PRICE[i], price));
        bought.push((items[i], qty, price));
    }
    let v = variant(rng);
    let total: i64 = bought.iter().map(|(_, q, p)| q * p).sum();
    let facts = bought
        .iter()
        .map(|&((one, many), q, p)| match v {
            0 => format!(
                "{name} buys {} at {} each.",
                count(q, one, many),
                dollars(p)
            ),
            1 => format!("Each {one} costs {}, and {name} takes {q}.", dollars(p)),
            _ => format!(
                "{name} picks up {}, priced at {} per {one}.",
                count(q, one, many),
                dollars(p)
            ),
        })
        .collect();
    let lead = vec![match v {
        0 => format!("{name} goes to the market."),
        1 => format!("{name} is shopping for a family trip."),
        _ => format!("{name} visits a small shop after work."),
    }];
    if mode == 0 {
        let ask = match v {
            0 => format!("How many dollars does {name} spend in total?"),
            1 => "What is the total cost in dollars?".to_string(),
            _ => format!("How much does {name} pay altogether, in dollars?"),
        };
        Draft::words(params, lead, facts, ask, total)
    } else {
        let bill = *BILLS
            .iter()
            .find(|&&b| b > total)
            .expect("totals stay below 5000");
        params.push(("bill", bill));
        let ask = match v {
            0 => format!(
                "{name} pays with {}. How much change does {name} get?",
                dollars(bill)
            ),
            1 => format!(
                "If {name} hands over {}, how many dollars come back as change?",
                dollars(bill)
            ),
            _ => format!("{name} pays with a {bill}-dollar bill. What is the change, in dollars?"),
        };
        Draft::words(params, lead, facts, ask, bill - total)
    }
}

fn ages(rng: &mut ChallengeRng, s: i64) -> Draft {
    let names = distinct(rng, &NAMES, 3);
    let (a_n, b_n, c_n) = (names[0], names[1], names[2]);
    let mode = rng.below(3) as i64;
    let mut params = vec![("mode", mode)];
    let years = |y: i64| count(y, "year", "years");
    match mode {
        0 => {
            let a = rng.range(2, 8 + 2 * s);
            let older_by = rng.range(1, 5 + 2 * s);
            let ahead = rng.range(1, 3 + s);
            let people = if s >= 6 { 3 } else { 2 };
            let younger = if people == 3 {
                rng.range(1, a + older_by - 1)
            } else {
                0
            };
            let v = variant(rng);
            params.extend([
                ("age_a", a),
                ("older_by", older_by),
                ("years_ahead", ahead),
                ("people", people),
                ("younger_than_b_by", younger),
            ]);
            let b = a + older_by;
            let mut answer = a + ahead + b + ahead;
            let mut facts = vec![
                format!("{a_n} is {} old.", years(a)),
                match v {
                    0 => format!("{b_n} is {} older than {a_n}.", years(older_by)),
                    1 => format!("{b_n} was born {} before {a_n}.", years(older_by)),
                    _ => format!("{a_n} is {} younger than {b_n}.", years(older_by)),
                },
            ];
            if people == 3 {
                answer += b - younger + ahead;
                facts.push(format!("{c_n} is {} younger than {b_n}.", years(younger)));
            }
            let who = if people == 3 { "all three" } else { "the two" };
            let ask = match v {
                0 => format!("What will the sum of their ages be in {}?", years(ahead)),
                1 => format!(
                    "In {}, what will the ages of {who} add up to?",
                    years(ahead)
                ),
                _ => format!(
                    "What will be the total of the ages of {who} {} from now?",
                    years(ahead)
                ),
            };
            Draft::words(params, vec![], facts, ask, answer)
        }
        1 => {
            let ago = rng.range(1, 2 + s);
            let a_then = rng.range(1, 3 + s);
            let factor = rng.range(2, 4 + s / 3);
            let ahead = if s >= 4 { rng.range(1, 2 + s) } else { 0 };
            let v = variant(rng);
            let a = a_then + ago;
            params.extend([
                ("age_a", a),
                ("years_ago", ago),
                ("factor", factor),
                ("years_ahead", ahead),
            ]);
            let facts = vec![
                format!("{a_n} is {} old now.", years(a)),
                match v {
                    0 => format!(
                        "{} ago, {b_n} was {factor} times as old as {a_n} was then.",
                        years(ago)
                    ),
                    1 => format!(
                        "{} ago, {b_n}'s age was {factor} times {a_n}'s age at that time.",
                        years(ago)
                    ),
                    _ => format!(
                        "When {a_n} was {} younger than now, {b_n} was exactly {factor} times \
                         as old as {a_n}.",
                        years(ago)
                    ),
                },
            ];
            let ask = if ahead == 0 {
                format!("How old is {b_n} now?")
            } else {
                format!("How old will {b_n} be in {}?", years(ahead))
            };
            Draft::words(params, vec![], facts, ask, factor * a_then + ago + ahead)
        }
        _ => {
            let a = rng.range(2, 8 + 2 * s);
            let diff = rng.range(1, 5 + 2 * s);
            let ask_older = rng.coin();
            let ahead = if s >= 5 { rng.range(1, 2 + s) } else { 0 };
            let v = variant(rng);
            let sum = 2 * a + diff;
            params.extend([
                ("sum", sum),
                ("difference", diff),
                ("ask_older", i64::from(ask_older)),
                ("years_ahead", ahead),
            ]);
            let facts = vec![
                match v {
                    0 => format!("The sum of {a_n}'s and {b_n}'s ages is {sum}."),
                    1 => format!("Together, {a_n} and {b_n} are {} old.", years(sum)),
                    _ => format!("{a_n}'s age plus {b_n}'s age equals {sum} years."),
                },
                format!("{b_n} is {} older than {a_n}.", years(diff)),
            ];
            let target = if ask_older { b_n } else { a_n };
            let ask = if ahead == 0 {
                format!("How old is {target}?")
            } else {
                format!("How old will {target} be in {}?", years(ahead))
            };
            let answer = if ask_older { a + diff } else { a } + ahead;
            Draft::words(params, vec![], facts, ask, answer)
        }
    }
}

fn units(rng: &mut ChallengeRng, s: i64) -> Draft {
    let name = *rng.pick(&NAMES);
    let mode = rng.below(4) as i64;
    let mut params = vec![("mode", mode)];
    match mode {
        0 => {
            let n = rng.range(1, 1 + s / 2);
            let hours = rng.range(1, 3);
            let minutes = rng.range(1, 59);
            let v = variant(rng);
            params.extend([("count", n), ("hours", hours), ("minutes", minutes)]);
            let len = format!(
                "{} and {}",
                count(hours, "hour", "hours"),
                count(minutes, "minute", "minutes")
            );
            let (lead, ask) = match v {
                0 => (
                    format!(
                        "{name} watches {} back to back, each {len} long.",
                        count(n, "movie", "movies")
                    ),
                    "How many minutes of movies does that make?".to_string(),
                ),
                1 => (
                    format!(
                        "{name} practices piano in {}, and each lasts {len}.",
                        count(n, "session", "sessions")
                    ),
                    format!("How many minutes does {name} practice in total?"),
                ),
                _ => (
                    format!(
                        "{name} listens to {}, each running {len}.",
                        count(n, "audiobook", "audiobooks")
                    ),
                    "What is the total listening time in minutes?".to_string(),
                ),
            };
            Draft::words(params, vec![lead], vec![], ask, n * (60 * hours + minutes))
        }
        1 => {
            let km = rng.range(1, 2 + s);
            let m = if s <= 5 {
                50 * rng.range(1, 19)
            } else {
                rng.range(1, 999)
            };
            let laps = rng.range(1, 1 + s / 2);
            let v = variant(rng);
            params.extend([("km", km), ("m", m), ("laps", laps)]);
            let len = format!(
                "{} and {}",
                count(km, "kilometer", "kilometers"),
                count(m, "meter", "meters")
            );
            let (lead, ask) = match v {
                0 => (
                    format!(
                        "A hiking trail is {len} long, and {name} walks it {}.",
                        count(laps, "time", "times")
                    ),
                    format!("How many meters does {name} walk?"),
                ),
                1 => (
                    format!(
                        "{name} swims {} along a course that is {len} long.",
                        count(laps, "length", "lengths")
                    ),
                    "What distance is that in meters?".to_string(),
                ),
                _ => (
                    format!(
                        "One loop of the park is {len}, and {name} runs {}.",
                        count(laps, "loop", "loops")
                    ),
                    format!("How many meters does {name} run in total?"),
                ),
            };
            Draft::words(params, vec![lead], vec![], ask, laps * (1000 * km + m))
        }
        2 => {
            let portion = 25 * rng.range(2, 10);
            let n = rng.range(2, 4 + 3 * s);
            let v = variant(rng);
            let total = portion * n;
            let (kg, g) = (total / 1000, total % 1000);
            params.extend([("kilograms", kg), ("grams", g), ("portion_grams", portion)]);
            let amount = match (kg, g) {
                (0, g) => count(g, "gram", "grams"),
                (kg, 0) => count(kg, "kilogram", "kilograms"),
                (kg, g) => format!(
                    "{} and {}",
                    count(kg, "kilogram", "kilograms"),
                    count(g, "gram", "grams")
                ),
            };
            let (lead, fact, ask) = match v {
                0 => (
                    format!("{name} has {amount} of flour."),
                    format!("Each batch of cookies needs {portion} grams of flour."),
                    "How many batches can be made with all of the flour?".to_string(),
                ),
                1 => (
                    format!("A sack holds {amount} of rice."),
                    format!("{name} packs it into bags of {portion} grams each."),
                    "How many bags does that fill?".to_string(),
                ),
                _ => (
                    format!("{name} buys {amount} of coffee beans."),
                    format!("Every jar takes {portion} grams of beans."),
                    format!("How many jars can {name} fill?"),
                ),
            };
            Draft::words(params, vec![lead], vec![fact], ask, n)
        }
        _ => {
            let dozens = rng.range(1, 2 + s);
            let used = rng.range(1, 12 * dozens - 1);
            let v = variant(rng);
            params.extend([("dozens", dozens), ("used", used)]);
            let dz = count(dozens, "dozen", "dozen");
            let (lead, fact, ask) = match v {
                0 => (
                    format!("{name} buys {dz} eggs."),
                    format!("{name} uses {used} of them for baking."),
                    "How many eggs are left?".to_string(),
                ),
                1 => (
                    format!("A bakery makes {dz} rolls in the morning."),
                    format!("By noon, {used} of them are sold to customers like {name}."),
                    "How many rolls remain unsold?".to_string(),
                ),
                _ => (
                    format!("{name} bakes {dz} cookies for a fair."),
                    format!("{used} cookies are given away as samples."),
                    "How many cookies does that leave?".to_string(),
                ),
            };
            Draft::words(params, vec![lead], vec![fact], ask, 12 * dozens - used)
        }
    }
}

fn work(rng: &mut ChallengeRng, s: i64) -> Draft {
    let product = *rng.pick(&PRODUCTS);
    let (agent, agents) = *rng.pick(&AGENTS);
    let mode = rng.below(2) as i64;
    let mut params = vec![("mode", mode)];
    if mode == 0 {
        let workers = rng.range(2, 3 + s);
        let rate = rng.range(2, 5 + 3 * s);
        let hours = rng.range(1, 8);
        let days = if s <= 3 { 1 } else { rng.range(2, 2 + s / 2) };
        let defective = if s >= 7 {
            rng.range(1, workers * rate)
        } else {
            0
        };
        let v = variant(rng);
        params.extend([
            ("workers", workers),
            ("rate", rate),
            ("hours", hours),
            ("days", days),
            ("defective", defective),
        ]);
        let lead = vec![match v {
            0 => format!("A workshop has {workers} {agents} making {product}."),
            1 => format!("{workers} {agents} work together on an order of {product}."),
            _ => format!("At a small factory, {workers} {agents} produce {product}."),
        }];
        let mut facts = vec![
            format!("Each {agent} makes {rate} {product} per hour."),
            format!(
                "They work {} a day for {}.",
                count(hours, "hour", "hours"),
                count(days, "day", "days")
            ),
        ];
        if defective > 0 {
            facts.push(format!(
                "In the end, {defective} of the {product} are found to be defective and thrown away."
            ));
        }
        let good = if defective > 0 { "good " } else { "" };
        let ask = match v {
            0 => format!("How many {good}{product} are made in total?"),
            1 => format!("How many {good}{product} do they produce altogether?"),
            _ => format!("What is the total number of {good}{product} produced?"),
        };
        let answer = workers * rate * hours * days - defective;
        Draft::words(params, lead, facts, ask, answer)
    } else {
        let groups = if s <= 4 { 1 } else { 2 };
        params.push(("groups", groups));
        let mut per_hour = 0;
        let mut facts = Vec::new();
        let kind = ["new", "older"];
        for i in 0..groups as usize {
            let w = rng.range(1, 2 + s);
            let r = rng.range(2, 5 + 3 * s);
            params.push((WORKERS[i], w));
            params.push((RATE[i], r));
            per_hour += w * r;
            let who = if groups == 1 {
                count(w, agent, agents)
            } else {
                format!("{w} {} {}", kind[i], if w == 1 { agent } else { agents })
            };
            facts.push(format!(
                "{who} {} {r} {product} per hour{}.",
                if w == 1 { "makes" } else { "make" },
                if w == 1 { "" } else { " each" }
            ));
        }
        let hours = rng.range(1, 2 + s);
        let v = variant(rng);
        let target = hours * per_hour;
        params.push(("target", target));
        let lead = vec![match v {
            0 => format!("A company must deliver {target} {product}."),
            1 => format!("An order for {target} {product} has just arrived."),
            _ => format!("A charity needs {target} {product} for an event."),
        }];
        let ask = match v {
            0 => "How many hours will it take to finish the order?".to_string(),
            1 => format!("Working together, how many hours do the {agents} need?"),
            _ => format!("How long, in hours, does it take to make all the {product}?"),
        };
        Draft::words(params, lead, facts, ask, hours)
    }
}

/// An arithmetic expression tree.
enum Expr {
    Num(i64),
    Op(u8, Box<Expr>, Box<Expr>),
}

impl Expr {
    fn value(&self) -> Option<Rational> {
        match self {
            Expr::Num(v) => Some(Rational::int(*v)),
            Expr::Op(op, l, r) => {
                let (l, r) = (l.value()?, r.value()?);
                match op {
                    1 => l.checked_add(r),
                    2 => l.checked_sub(r),
                    3 => l.checked_mul(r),
                    _ => l.checked_div(r),
                }
            }
        }
    }

    fn prec(&self) -> u8 {
        match self {
            Expr::Num(_) => 3,
            Expr::Op(1 | 2, ..) => 1,
            Expr::Op(..) => 2,
        }
    }

    /// Infix with the parentheses needed: a left child of lower precedence,
    /// a right child of lower or equal precedence.
    fn render(&self) -> String {
        match self {
            Expr::Num(v) => v.to_string(),
            Expr::Op(op, l, r) => {
                let p = self.prec();
                let wrap = |e: &Expr, need: bool| {
                    if need {
                        format!("({})", e.render())
                    } else {
                        e.render()
                    }
                };
                let sym = ["+", "-", "*", "/"][usize::from(op - 1)];
                format!("{} {sym} {}", wrap(l, l.prec() < p), wrap(r, r.prec() <= p))
            }
        }
    }

    fn postfix(&self, out: &mut Vec<(&'static str, i64)>) {
        match self {
            Expr::Num(v) => out.push(("num", *v)),
            Expr::Op(op, l, r) => {
                l.postfix(out);
                r.postfix(out);
                out.push(("op", i64::from(*op)));
            }
        }
    }
}

fn expr_node(rng: &mut ChallengeRng, k: i64, s: i64, divs: &mut i64, max_div: i64) -> Expr {
    if k == 0 {
        return Expr::Num(rng.range(1, 5 + 2 * s));
    }
    let mut op = rng.below(4) as u8 + 1;
    if op == 4 {
        if *divs >= max_div {
            op = 3;
        } else {
            *divs += 1;
        }
    }
    if op >= 3 {
        let l = expr_node(rng, k - 1, s, divs, max_div);
        let r = Expr::Num(rng.range(2, 9));
        Expr::Op(op, Box::new(l), Box::new(r))
    } else {
        let split = rng.below(k as u64) as i64;
        let l = expr_node(rng, split, s, divs, max_div);
        let r = expr_node(rng, k - 1 - split, s, divs, max_div);
        Expr::Op(op, Box::new(l), Box::new(r))
    }
}

fn arithmetic(rng: &mut ChallengeRng, s: i64) -> Draft {
    let max_div = if s <= 6 { 1 } else { 2 };
    let (expr, answer) = loop {
        let mut divs = 0;
        let e = expr_node(rng, 1 + s, s, &mut divs, max_div);
        // Leaves are at most 25 and factors at most 9 with at most 11
        // operators: no overflow is possible in i128.
        let v = e.value().expect("bounded expression");
        if v != Rational::int(0) {
            break (e, v);
        }
    };
    let text = expr.render();
    let ask = match variant(rng) {
        0 => format!("Compute {text}."),
        1 => format!("What is the exact value of {text}?"),
        _ => format!("Evaluate the expression {text}, giving an exact answer."),
    };
    let mut params = Vec::new();
    expr.postfix(&mut params);
    Draft {
        params,
        lead: vec![],
        facts: vec![],
        ask,
        answer,
        words: false,
    }
}

/// `3x + 4`, `x - 2`, `5x`.
fn lin(a: i64, b: i64) -> String {
    let ax = match a {
        1 => "x".to_string(),
        -1 => "-x".to_string(),
        a => format!("{a}x"),
    };
    match b {
        0 => ax,
        b if b > 0 => format!("{ax} + {b}"),
        b => format!("{ax} - {}", -b),
    }
}

fn linear(rng: &mut ChallengeRng, s: i64) -> Draft {
    let mode = rng.below(3) as i64;
    let r = 3 + 2 * s;
    let mut params = vec![("mode", mode)];
    let (ask, answer) = if mode < 2 {
        let xn = rng.range(1, r);
        let sign = if rng.coin() { -1 } else { 1 };
        let xd = if s >= 6 { rng.range(1, 3) } else { 1 };
        let x = Rational::new(i128::from(sign * xn), i128::from(xd)).expect("xd >= 1");
        // `coef * x` for a coefficient that is a multiple of xd: an integer.
        let times_x = |coef: i64| coef / xd * sign * xn;
        let (left, right) = if mode == 0 {
            let a = xd * rng.range(1, 2 + s / 2);
            let b = rng.range(-r, r);
            let c = times_x(a) + b;
            params.extend([("a", a), ("b", b), ("c", c)]);
            (lin(a, b), c.to_string())
        } else {
            let c = rng.range(1, 2 + s / 2);
            let k = xd * rng.range(1, 2 + s / 2);
            let a = c + k;
            let b = rng.range(-r, r);
            let e = times_x(k) + b;
            params.extend([("a", a), ("b", b), ("c", c), ("e", e)]);
            (lin(a, b), lin(c, e))
        };
        let swap = rng.coin();
        let eq = if swap {
            format!("{right} = {left}")
        } else {
            format!("{left} = {right}")
        };
        let ask = match variant(rng) {
            0 => format!("Solve for x: {eq}."),
            1 => format!("Find the value of x that satisfies {eq}."),
            _ => format!("If {eq}, what is x?"),
        };
        (ask, x)
    } else {
        let name = *rng.pick(&NAMES);
        let x = rng.range(1, r);
        let a = rng.range(2, 3 + s / 2);
        let b_abs = rng.range(1, r);
        let subtract = rng.coin();
        let factor = if s >= 5 { rng.range(2, 4) } else { 1 };
        let v = variant(rng);
        let b = if subtract { -b_abs } else { b_abs };
        let c = factor * (a * x + b);
        params.extend([("a", a), ("b", b), ("factor", factor), ("c", c)]);
        let step = if subtract {
            format!("subtracts {b_abs}")
        } else {
            format!("adds {b_abs}")
        };
        let then = if factor > 1 {
            format!(", and then multiplies the result by {factor}")
        } else {
            String::new()
        };
        let ask = match v {
            0 => format!(
                "{name} thinks of a number, multiplies it by {a}, then {step}{then}. \
                 The result is {c}. What number did {name} think of?"
            ),
            1 => format!(
                "{name} picks a whole number. {name} multiplies it by {a}, then {step}{then}, \
                 and gets {c}. What was the number?"
            ),
            _ => format!(
                "A number is multiplied by {a}; then {name} {step}{then}. The final value is \
                 {c}. Find the number."
            ),
        };
        (ask, Rational::int(x))
    };
    Draft {
        params,
        lead: vec![],
        facts: vec![],
        ask,
        answer,
        words: false,
    }
}

// ---------------------------------------------------------------------------
// Solvers: recompute the answer from the params alone, one per family.

fn get(params: &[(&'static str, i64)], name: &str) -> Option<i64> {
    params.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

fn int(v: i64) -> Rational {
    Rational::int(v)
}

/// The exact answer implied by `params`; `None` if a name is missing, a value
/// is out of range, or the arithmetic fails (overflow, division by zero).
pub fn solve(family: Family, params: &[(&'static str, i64)]) -> Option<Rational> {
    match family {
        Family::Rates => solve_rates(params),
        Family::Percent => solve_percent(params),
        Family::Ratio => solve_ratio(params),
        Family::Money => solve_money(params),
        Family::Ages => solve_ages(params),
        Family::Units => solve_units(params),
        Family::Work => solve_work(params),
        Family::Arithmetic => solve_arithmetic(params),
        Family::Linear => solve_linear(params),
    }
}

fn solve_rates(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    match get(p, "mode")? {
        0 => {
            let legs = usize::try_from(get(p, "legs")?).ok()?;
            let mut dist = int(0);
            for i in 0..legs {
                dist =
                    dist.checked_add(g(LEG_SPEED.get(i)?)?.checked_mul(g(LEG_HOURS.get(i)?)?)?)?;
            }
            Some(dist)
        }
        1 => {
            let first = g("speed_1")?.checked_mul(g("hours_1")?)?;
            let rest = g("distance_km")?.checked_sub(first)?;
            g("hours_1")?.checked_add(rest.checked_div(g("speed_2")?)?)
        }
        _ => None,
    }
}

fn solve_percent(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    let hundred = int(100);
    match get(p, "mode")? {
        0 => {
            let keep = hundred
                .checked_sub(g("discount_percent")?)?
                .checked_div(hundred)?;
            let sale = g("price")?.checked_mul(keep)?;
            g("qty")?.checked_mul(sale)?.checked_sub(g("coupon")?)
        }
        1 => {
            let (old, new) = (g("old")?, g("new")?);
            let change = new
                .checked_sub(old)?
                .checked_mul(hundred)?
                .checked_div(old)?;
            if change.num() < 0 {
                int(0).checked_sub(change)
            } else {
                Some(change)
            }
        }
        2 => {
            let total = g("bill")?
                .checked_mul(hundred.checked_add(g("rate_percent")?)?)?
                .checked_div(hundred)?;
            total.checked_div(g("people")?)
        }
        _ => None,
    }
}

fn solve_ratio(p: &[(&'static str, i64)]) -> Option<Rational> {
    let people = usize::try_from(get(p, "people")?).ok()?;
    let mut parts = Vec::new();
    for i in 0..people {
        parts.push(int(get(p, RATIO.get(i)?)?));
    }
    let sum = parts
        .iter()
        .try_fold(int(0), |acc, &r| acc.checked_add(r))?;
    let mine = *parts.get(usize::try_from(get(p, "who")?).ok()?)?;
    match get(p, "mode")? {
        0 => int(get(p, "total")?).checked_div(sum)?.checked_mul(mine),
        1 => int(get(p, "known_amount")?)
            .checked_div(mine)?
            .checked_mul(sum),
        _ => None,
    }
}

fn solve_money(p: &[(&'static str, i64)]) -> Option<Rational> {
    let items = usize::try_from(get(p, "items")?).ok()?;
    let mut total = int(0);
    for i in 0..items {
        let line = int(get(p, QTY.get(i)?)?).checked_mul(int(get(p, PRICE.get(i)?)?))?;
        total = total.checked_add(line)?;
    }
    match get(p, "mode")? {
        0 => Some(total),
        1 => int(get(p, "bill")?).checked_sub(total),
        _ => None,
    }
}

fn solve_ages(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    let ahead = g("years_ahead")?;
    match get(p, "mode")? {
        0 => {
            let a = g("age_a")?;
            let b = a.checked_add(g("older_by")?)?;
            let mut now = a.checked_add(b)?;
            let people = get(p, "people")?;
            if people == 3 {
                now = now.checked_add(b.checked_sub(g("younger_than_b_by")?)?)?;
            } else if people != 2 {
                return None;
            }
            now.checked_add(ahead.checked_mul(int(people))?)
        }
        1 => {
            let ago = g("years_ago")?;
            let a_then = g("age_a")?.checked_sub(ago)?;
            let b_then = a_then.checked_mul(g("factor")?)?;
            b_then.checked_add(ago)?.checked_add(ahead)
        }
        2 => {
            let (sum, diff) = (g("sum")?, g("difference")?);
            let younger = sum.checked_sub(diff)?.checked_div(int(2))?;
            let age = match get(p, "ask_older")? {
                0 => younger,
                1 => younger.checked_add(diff)?,
                _ => return None,
            };
            age.checked_add(ahead)
        }
        _ => None,
    }
}

fn solve_units(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    match get(p, "mode")? {
        0 => {
            let each = g("hours")?
                .checked_mul(int(60))?
                .checked_add(g("minutes")?)?;
            g("count")?.checked_mul(each)
        }
        1 => {
            let each = g("km")?.checked_mul(int(1000))?.checked_add(g("m")?)?;
            g("laps")?.checked_mul(each)
        }
        2 => {
            let grams = g("kilograms")?
                .checked_mul(int(1000))?
                .checked_add(g("grams")?)?;
            grams.checked_div(g("portion_grams")?)
        }
        3 => g("dozens")?.checked_mul(int(12))?.checked_sub(g("used")?),
        _ => None,
    }
}

fn solve_work(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    match get(p, "mode")? {
        0 => {
            let per_day = g("workers")?
                .checked_mul(g("rate")?)?
                .checked_mul(g("hours")?)?;
            per_day
                .checked_mul(g("days")?)?
                .checked_sub(g("defective")?)
        }
        1 => {
            let groups = usize::try_from(get(p, "groups")?).ok()?;
            let mut per_hour = int(0);
            for i in 0..groups {
                per_hour =
                    per_hour.checked_add(g(WORKERS.get(i)?)?.checked_mul(g(RATE.get(i)?)?)?)?;
            }
            g("target")?.checked_div(per_hour)
        }
        _ => None,
    }
}

/// Evaluate the postfix expression.
fn solve_arithmetic(p: &[(&'static str, i64)]) -> Option<Rational> {
    let mut stack: Vec<Rational> = Vec::new();
    for &(name, v) in p {
        match name {
            "num" => stack.push(int(v)),
            "op" => {
                let r = stack.pop()?;
                let l = stack.pop()?;
                stack.push(match v {
                    1 => l.checked_add(r)?,
                    2 => l.checked_sub(r)?,
                    3 => l.checked_mul(r)?,
                    4 => l.checked_div(r)?,
                    _ => return None,
                });
            }
            _ => return None,
        }
    }
    match stack.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

fn solve_linear(p: &[(&'static str, i64)]) -> Option<Rational> {
    let g = |n| get(p, n).map(int);
    match get(p, "mode")? {
        // a x + b = c
        0 => g("c")?.checked_sub(g("b")?)?.checked_div(g("a")?),
        // a x + b = c x + e
        1 => g("e")?
            .checked_sub(g("b")?)?
            .checked_div(g("a")?.checked_sub(g("c")?)?),
        // factor (a x + b) = c
        2 => g("c")?
            .checked_div(g("factor")?)?
            .checked_sub(g("b")?)?
            .checked_div(g("a")?),
        _ => None,
    }
}
