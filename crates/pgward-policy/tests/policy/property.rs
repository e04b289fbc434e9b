//! Property: adding a privilege to a policy never turns an Allow into a Deny.
//! Random policies and needs from a small seeded generator (no extra dependency); every
//! seed is printed on failure so a case can be replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pgward_policy::{Action, Need, Policy};
use support::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TABLES: &[&str] = &[
    "t1",
    "t2",
    "sales.t3",
    "pg_catalog.pg_class",
    "pg_catalog.pg_stats",
];
const COLUMNS: &[&str] = &["a", "b", "c"];
const NEED_COLUMNS: &[&str] = &["a", "b", "c", "ctid"];
const FUNCTIONS: &[&str] = &["public.f", "pg_catalog.nextval", "pg_catalog.format_type"];

#[derive(Clone, Debug, Default)]
enum Cols {
    #[default]
    Absent,
    All,
    List(Vec<&'static str>),
}

#[derive(Clone, Debug, Default)]
struct Grant {
    select: Cols,
    insert: Cols,
    update: Cols,
    delete: bool,
    truncate: bool,
}

#[derive(Clone, Debug, Default)]
struct Model {
    tables: BTreeMap<&'static str, Grant>,
    star: Option<Grant>,
    functions: Vec<&'static str>,
    ddl: bool,
    catalog: bool,
    /// Grants of a parent role `p` that the role `r` inherits when set.
    parent: Option<Box<Model>>,
}

fn random_cols(rng: &mut Rng) -> Cols {
    match rng.below(4) {
        0 => Cols::Absent,
        1 => Cols::All,
        _ => Cols::List(
            COLUMNS
                .iter()
                .copied()
                .filter(|_| rng.below(2) == 0)
                .collect(),
        ),
    }
}

fn random_grant(rng: &mut Rng) -> Grant {
    Grant {
        select: random_cols(rng),
        insert: random_cols(rng),
        update: random_cols(rng),
        delete: rng.below(3) == 0,
        truncate: rng.below(4) == 0,
    }
}

fn random_model(rng: &mut Rng, depth: usize) -> Model {
    let mut m = Model {
        catalog: rng.below(2) == 0,
        ddl: rng.below(5) == 0,
        ..Model::default()
    };
    for t in TABLES {
        if rng.below(2) == 0 {
            m.tables.insert(t, random_grant(rng));
        }
    }
    if rng.below(4) == 0 {
        m.star = Some(random_grant(rng));
    }
    m.functions = FUNCTIONS
        .iter()
        .copied()
        .filter(|_| rng.below(3) == 0)
        .collect();
    if depth > 0 && rng.below(3) == 0 {
        m.parent = Some(Box::new(random_model(rng, depth - 1)));
    }
    m
}

fn widen_cols(rng: &mut Rng, c: &mut Cols) {
    *c = match std::mem::take(c) {
        Cols::Absent => Cols::List(vec![COLUMNS[rng.below(COLUMNS.len())]]),
        Cols::All => Cols::All,
        Cols::List(mut list) if rng.below(3) > 0 => {
            list.push(COLUMNS[rng.below(COLUMNS.len())]);
            Cols::List(list)
        }
        Cols::List(_) => Cols::All,
    };
}

fn widen_grant(rng: &mut Rng, g: &mut Grant) {
    match rng.below(5) {
        0 => widen_cols(rng, &mut g.select),
        1 => widen_cols(rng, &mut g.insert),
        2 => widen_cols(rng, &mut g.update),
        3 => g.delete = true,
        _ => g.truncate = true,
    }
}

/// The same model with one more privilege somewhere.
fn widen(rng: &mut Rng, m: &Model) -> Model {
    let mut w = m.clone();
    match rng.below(7) {
        0 => w.catalog = true,
        1 => w.ddl = true,
        2 => w.functions.push(FUNCTIONS[rng.below(FUNCTIONS.len())]),
        3 => widen_grant(rng, w.star.get_or_insert_with(Grant::default)),
        4 => {
            let parent = w.parent.get_or_insert_with(|| Box::new(Model::default()));
            let t = rng.pick(TABLES);
            widen_grant(rng, parent.tables.entry(t).or_default());
        }
        _ => {
            let t = rng.pick(TABLES);
            widen_grant(rng, w.tables.entry(t).or_default());
        }
    }
    w
}

fn cols_yaml(c: &Cols) -> Option<String> {
    match c {
        Cols::Absent => None,
        Cols::All => Some("\"*\"".into()),
        Cols::List(list) => Some(format!("[{}]", list.join(", "))),
    }
}

fn grant_yaml(g: &Grant) -> String {
    let mut parts = Vec::new();
    for (k, c) in [
        ("select", &g.select),
        ("insert", &g.insert),
        ("update", &g.update),
    ] {
        if let Some(v) = cols_yaml(c) {
            parts.push(format!("{k}: {v}"));
        }
    }
    parts.push(format!("delete: {}", g.delete));
    parts.push(format!("truncate: {}", g.truncate));
    format!("{{ {} }}", parts.join(", "))
}

fn compile(m: &Model) -> Policy {
    // The role is `r`; its parent chain is `r_p`, `r_p_p`, ... (separate roles).
    let mut out = String::from("roles:\n");
    let mut chain = vec![("r".to_string(), m)];
    while let Some((name, model)) = chain.pop() {
        let _ = writeln!(out, "  {name}:");
        let _ = writeln!(out, "    catalog: {}", model.catalog);
        let _ = writeln!(out, "    ddl: {}", model.ddl);
        if let Some(parent) = &model.parent {
            let parent_name = format!("{name}_p");
            let _ = writeln!(out, "    inherit: [{parent_name}]");
            chain.push((parent_name, parent));
        }
        let _ = writeln!(out, "    functions: [{}]", model.functions.join(", "));
        let mut tables: Vec<String> = model
            .tables
            .iter()
            .map(|(t, g)| format!("{t}: {}", grant_yaml(g)))
            .collect();
        if let Some(star) = &model.star {
            tables.push(format!("\"*\": {}", grant_yaml(star)));
        }
        let _ = writeln!(out, "    tables: {{ {} }}", tables.join(", "));
    }
    Policy::from_sources(&[("p.yaml", out.as_str())]).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

fn random_need(rng: &mut Rng) -> Need {
    let table = rng.pick(TABLES);
    let column = rng.pick(NEED_COLUMNS);
    match rng.below(9) {
        0 => col(table, column),
        1 => ins(table, column),
        2 => upd(table, column),
        3 => any_of(
            [Action::Select, Action::Insert, Action::Update][rng.below(3)],
            table,
        ),
        4 => del(table),
        5 => trunc(table),
        6 => whole([Action::Select, Action::Update][rng.below(2)], table),
        7 => {
            let f = rng.pick(&[
                "public.f",
                "pg_catalog.nextval",
                "pg_catalog.format_type",
                "lower",
                "pg_sleep",
            ]);
            func(f)
        }
        _ => ddl(),
    }
}

#[test]
fn adding_a_privilege_never_turns_allow_into_deny() {
    let mut allowed = 0;
    let mut checked = 0;
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let base = random_model(&mut rng, 2);
        let base_policy = compile(&base);
        let mut wider = base.clone();
        for _ in 0..1 + rng.below(3) {
            wider = widen(&mut rng, &wider);
        }
        let wider_policy = compile(&wider);
        for _ in 0..40 {
            let needs: Vec<Need> = (0..1 + rng.below(3))
                .map(|_| random_need(&mut rng))
                .collect();
            let statement = [select(needs.clone())];
            checked += 1;
            if base_policy.check("r", &statement).is_ok() {
                allowed += 1;
                if let Err(d) = wider_policy.check("r", &statement) {
                    panic!("seed {seed}: {needs:?} allowed by\n{base:?}\nbut denied ({d}) by\n{wider:?}");
                }
            }
        }
    }
    // The generator must exercise both outcomes to mean anything.
    assert!(
        allowed > checked / 10,
        "only {allowed} of {checked} allowed"
    );
    assert!(allowed < checked, "everything allowed");
}
