//! The rules table: its rows, loading and validation, resolution and its explanation.

use super::fields::{json_type, Fields, Place};
use super::index::{rank, Index, BRANCH, GROUP, ITEM_TYPE};
use super::{FinePolicy, LimitsPolicy, LoanPolicy, LostPolicy, PolicyKind, RulesError, Warning};
use crate::ids::validate_id;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// The text format of a rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (`rules.toml`), the usual form.
    Toml,
    /// JSON (`rules.json`), the same outline.
    Json,
}

impl Format {
    /// The format a file's name implies: `.json` is JSON, anything else TOML.
    pub fn for_file_name(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

/// One key field of a row: `*` (any value) or one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    /// `*`, or the field left out: any value.
    Any,
    /// Exactly this value.
    Is(String),
}

impl Match {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Match::Any => true,
            Match::Is(v) => v == value,
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Any => f.write_str("*"),
            Match::Is(v) => f.write_str(v),
        }
    }
}

impl Serialize for Match {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One row of the rules table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its position in the file's `rules`, from 1.
    pub row: usize,
    /// The member's group it applies to.
    pub group: Match,
    /// The item type it applies to.
    pub item_type: Match,
    /// The branch it applies to.
    pub branch: Match,
    /// The name of its loan policy.
    pub loan: String,
    /// The name of its fine policy.
    pub fine: String,
    /// The name of its limits policy.
    pub limits: String,
    /// The name of its lost-item policy.
    pub lost: String,
    /// The policies' positions in the table's lists: loan, fine, limits, lost.
    #[serde(skip)]
    policies: [usize; 4],
}

impl Rule {
    /// Its key fields: group, item type, branch.
    pub fn key(&self) -> [&Match; 3] {
        [&self.group, &self.item_type, &self.branch]
    }

    /// How many of its key fields are not `*` (0 to 3).
    pub fn specific_fields(&self) -> u32 {
        self.pattern().count_ones()
    }

    /// Whether it applies to these values.
    pub fn matches(&self, group: &str, item_type: &str, branch: &str) -> bool {
        self.group.matches(group)
            && self.item_type.matches(item_type)
            && self.branch.matches(branch)
    }

    /// Which key fields are not `*`, as bits (see `index.rs`).
    pub(crate) fn pattern(&self) -> u8 {
        let bit = |m: &Match, b: u8| if *m == Match::Any { 0 } else { b };
        bit(&self.group, GROUP) | bit(&self.item_type, ITEM_TYPE) | bit(&self.branch, BRANCH)
    }
}

/// A policy and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named<P> {
    /// Its name in the rules file.
    pub name: String,
    /// The policy.
    #[serde(flatten)]
    pub policy: P,
}

/// The policies that apply to a loan: those of the winning row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resolved<'t> {
    /// The winning row, from 1.
    pub row: usize,
    /// Its loan policy.
    pub loan: &'t Named<LoanPolicy>,
    /// Its fine policy.
    pub fine: &'t Named<FinePolicy>,
    /// Its limits policy.
    pub limits: &'t Named<LimitsPolicy>,
    /// Its lost-item policy.
    pub lost: &'t Named<LostPolicy>,
}

/// Why a matching row did not win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LostBecause {
    /// It has fewer non-`*` fields than the winner.
    FewerSpecificFields,
    /// As many non-`*` fields, but its most important one ranks lower (item type > branch > group).
    LowerPrecedence,
    /// The same key as the winner, earlier in the file.
    EarlierRow,
}

impl fmt::Display for LostBecause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostBecause::FewerSpecificFields => "fewer specific fields",
            LostBecause::LowerPrecedence => "lower precedence (item type > branch > group)",
            LostBecause::EarlierRow => "earlier row with the same key",
        })
    }
}

/// A matching row that lost, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Beaten<'t> {
    /// The row.
    pub rule: &'t Rule,
    /// Why it lost to the winner.
    pub because: LostBecause,
}

/// Why a lookup resolved as it did: see [`RulesTable::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation<'t> {
    /// The winning row.
    pub winner: &'t Rule,
    /// Every other matching row, in file order, with the reason it lost.
    pub beaten: Vec<Beaten<'t>>,
    /// The resolved policies.
    pub policies: Resolved<'t>,
}

/// A loaded, validated rules table with its precomputed resolution.
#[derive(Debug, Clone)]
pub struct RulesTable {
    loans: Vec<Named<LoanPolicy>>,
    fines: Vec<Named<FinePolicy>>,
    limits: Vec<Named<LimitsPolicy>>,
    lost: Vec<Named<LostPolicy>>,
    rules: Vec<Rule>,
    index: Index,
    warnings: Vec<Warning>,
}

impl RulesTable {
    /// Loads a rules file written in TOML.
    pub fn from_toml(text: &str) -> Result<RulesTable, RulesError> {
        Self::parse(text, Format::Toml)
    }

    /// Loads a rules file written in JSON.
    pub fn from_json(text: &str) -> Result<RulesTable, RulesError> {
        Self::parse(text, Format::Json)
    }

    /// Loads a rules file in `format`.
    pub fn parse(text: &str, format: Format) -> Result<RulesTable, RulesError> {
        let value = match format {
            Format::Toml => toml::from_str::<Value>(text).map_err(|e| RulesError::Syntax {
                format: "TOML",
                reason: e.to_string().trim().to_owned(),
            })?,
            Format::Json => {
                serde_json::from_str::<Value>(text).map_err(|e| RulesError::Syntax {
                    format: "JSON",
                    reason: e.to_string(),
                })?
            }
        };
        Self::from_value(value)
    }

    /// Loads a rules file already parsed into generic data (the outline of `docs/rules.md`).
    pub fn from_value(value: Value) -> Result<RulesTable, RulesError> {
        let Value::Object(mut top) = value else {
            return Err(file_error(
                "*",
                "a rules file must be a table with `policies` and `rules`",
            ));
        };
        let policies = top.remove("policies").unwrap_or(Value::Object(Map::new()));
        let rows = top.remove("rules").unwrap_or(Value::Array(Vec::new()));
        if let Some(extra) = top.keys().next() {
            return Err(file_error(
                extra,
                "is not a part of a rules file; the parts are `policies` and `rules`",
            ));
        }
        let Value::Object(mut policies) = policies else {
            return Err(file_error(
                "policies",
                format!("must be a table, not {}", json_type(&policies)),
            ));
        };
        let mut table = RulesTable {
            loans: read_kind(&mut policies, PolicyKind::Loan, LoanPolicy::read)?,
            fines: read_kind(&mut policies, PolicyKind::Fine, FinePolicy::read)?,
            limits: read_kind(&mut policies, PolicyKind::Limits, LimitsPolicy::read)?,
            lost: read_kind(&mut policies, PolicyKind::Lost, LostPolicy::read)?,
            rules: Vec::new(),
            index: Index::default(),
            warnings: Vec::new(),
        };
        if let Some(extra) = policies.keys().next() {
            return Err(file_error(
                &format!("policies.{extra}"),
                "is not a kind of policy; the kinds are loan, fine, limits, lost",
            ));
        }
        let Value::Array(rows) = rows else {
            return Err(file_error(
                "rules",
                format!(
                    "must be an array of tables ([[rules]]), not {}",
                    json_type(&rows)
                ),
            ));
        };
        for (i, row) in rows.into_iter().enumerate() {
            let rule = table.read_rule(row, i + 1)?;
            table.rules.push(rule);
        }
        let fallback = table
            .rules
            .iter()
            .rposition(|r| r.pattern() == 0)
            .ok_or(RulesError::NoFallback)?;
        table.index = Index::build(&table.rules, fallback);
        table.warnings = table.find_warnings();
        Ok(table)
    }

    fn read_rule(&self, value: Value, row: usize) -> Result<Rule, RulesError> {
        let mut f = Fields::new(value, Place::Row(row), "a rule")?;
        let key = |f: &mut Fields, field: &'static str| -> Result<Match, RulesError> {
            match f.opt_text(field)? {
                None => Ok(Match::Any),
                Some(s) if s == "*" => Ok(Match::Any),
                Some(s) => {
                    validate_id(field, &s).map_err(|r| f.place().error(field, r))?;
                    Ok(Match::Is(s))
                }
            }
        };
        let group = key(&mut f, "group")?;
        let item_type = key(&mut f, "item_type")?;
        let branch = key(&mut f, "branch")?;
        let mut names: [String; 4] = Default::default();
        let mut policies = [0; 4];
        for (i, kind) in PolicyKind::ALL.into_iter().enumerate() {
            let name = f.text(kind.as_str())?;
            policies[i] = self.find(kind, &name).ok_or_else(|| {
                let known = self.names(kind);
                let reason = if known.is_empty() {
                    format!("names the {kind} policy {name:?}, but there are no {kind} policies; add [policies.{kind}.{name}]")
                } else {
                    format!("names the {kind} policy {name:?}, which does not exist; the {kind} policies are {}", known.join(", "))
                };
                f.place().error(kind.as_str(), reason)
            })?;
            names[i] = name;
        }
        f.finish()?;
        let [loan, fine, limits, lost] = names;
        Ok(Rule {
            row,
            group,
            item_type,
            branch,
            loan,
            fine,
            limits,
            lost,
            policies,
        })
    }

    fn names(&self, kind: PolicyKind) -> Vec<&str> {
        match kind {
            PolicyKind::Loan => self.loans.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Fine => self.fines.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Limits => self.limits.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Lost => self.lost.iter().map(|p| p.name.as_str()).collect(),
        }
    }

    fn find(&self, kind: PolicyKind, name: &str) -> Option<usize> {
        self.names(kind).iter().position(|n| *n == name)
    }

    fn find_warnings(&self) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let mut last: HashMap<[&Match; 3], usize> = HashMap::new();
        for rule in &self.rules {
            if let Some(earlier) = last.insert(rule.key(), rule.row) {
                warnings.push(Warning::Shadowed {
                    row: earlier,
                    by: rule.row,
                });
            }
        }
        warnings.sort_by_key(|w| match w {
            Warning::Shadowed { row, .. } => *row,
            Warning::UnusedPolicy { .. } => 0,
        });
        for (i, kind) in PolicyKind::ALL.into_iter().enumerate() {
            for (p, name) in self.names(kind).into_iter().enumerate() {
                if !self.rules.iter().any(|r| r.policies[i] == p) {
                    warnings.push(Warning::UnusedPolicy {
                        kind,
                        name: name.to_owned(),
                    });
                }
            }
        }
        warnings
    }

    /// The rows, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What is valid but probably unintended: rows that can never match, unused policies.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The loan policies, by name.
    pub fn loan_policies(&self) -> &[Named<LoanPolicy>] {
        &self.loans
    }

    /// The fine policies, by name.
    pub fn fine_policies(&self) -> &[Named<FinePolicy>] {
        &self.fines
    }

    /// The limits policies, by name.
    pub fn limits_policies(&self) -> &[Named<LimitsPolicy>] {
        &self.limits
    }

    /// The lost-item policies, by name.
    pub fn lost_policies(&self) -> &[Named<LostPolicy>] {
        &self.lost
    }

    /// The row (from 1) that wins for a member of `group` borrowing an item of `item_type` at
    /// `branch`, from the precomputed index: at most eight hash lookups, whatever the table's size.
    pub fn resolve_row(&self, group: &str, item_type: &str, branch: &str) -> usize {
        self.index.resolve(group, item_type, branch) + 1
    }

    /// The policies for a member of `group` borrowing an item of `item_type` at `branch`: those
    /// of the most specific matching row (see the [module](super) for the order).
    pub fn resolve(&self, group: &str, item_type: &str, branch: &str) -> Resolved<'_> {
        self.resolved(self.index.resolve(group, item_type, branch))
    }

    /// The same answer as [`resolve_row`](RulesTable::resolve_row), found by scoring every row:
    /// the reference the index is tested against, and the benchmark's baseline.
    pub fn resolve_row_by_scan(&self, group: &str, item_type: &str, branch: &str) -> usize {
        self.rules
            .iter()
            .filter(|r| r.matches(group, item_type, branch))
            .max_by_key(|r| (rank(r.pattern()), r.row))
            .map_or(0, |r| r.row)
    }

    /// Why these values resolve as they do: the winning row, every other matching row with the
    /// reason it lost, and the resolved policies.
    pub fn explain(&self, group: &str, item_type: &str, branch: &str) -> Explanation<'_> {
        let policies = self.resolve(group, item_type, branch);
        let winner = &self.rules[policies.row - 1];
        let beaten = self
            .rules
            .iter()
            .filter(|r| r.row != winner.row && r.matches(group, item_type, branch))
            .map(|rule| {
                let because = if rule.specific_fields() < winner.specific_fields() {
                    LostBecause::FewerSpecificFields
                } else if rule.pattern() != winner.pattern() {
                    LostBecause::LowerPrecedence
                } else {
                    LostBecause::EarlierRow
                };
                Beaten { rule, because }
            })
            .collect();
        Explanation {
            winner,
            beaten,
            policies,
        }
    }

    fn resolved(&self, position: usize) -> Resolved<'_> {
        let rule = &self.rules[position];
        let [loan, fine, limits, lost] = rule.policies;
        Resolved {
            row: rule.row,
            loan: &self.loans[loan],
            fine: &self.fines[fine],
            limits: &self.limits[limits],
            lost: &self.lost[lost],
        }
    }
}

fn file_error(field: &str, reason: impl Into<String>) -> RulesError {
    RulesError::File {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Reads `policies.KIND`: a table of named policies.
fn read_kind<P>(
    policies: &mut Map<String, Value>,
    kind: PolicyKind,
    read: fn(Fields) -> Result<P, RulesError>,
) -> Result<Vec<Named<P>>, RulesError> {
    let named = match policies.remove(kind.as_str()) {
        None => return Ok(Vec::new()),
        Some(Value::Object(named)) => named,
        Some(other) => {
            return Err(file_error(
                &format!("policies.{kind}"),
                format!(
                    "must be a table of named {kind} policies, not {}",
                    json_type(&other)
                ),
            ))
        }
    };
    let mut out = Vec::with_capacity(named.len());
    for (name, value) in named {
        let place = Place::Policy(kind, name.clone());
        validate_id("name", &name).map_err(|r| place.error("name", r))?;
        let policy = read(Fields::new(value, place, &format!("a {kind} policy"))?)?;
        out.push(Named { name, policy });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A table whose rows are `(group, item_type, branch, loan days)`; every loan policy is named
    /// `dN` for N days, the other policies are shared.
    fn table(rows: &[(&str, &str, &str, u64)]) -> RulesTable {
        let mut loans = Map::new();
        for &(_, _, _, days) in rows {
            loans.insert(
                format!("d{days}"),
                json!({ "period": format!("{days} days") }),
            );
        }
        let rules: Vec<Value> = rows
            .iter()
            .map(|&(g, i, b, days)| {
                json!({"group": g, "item_type": i, "branch": b, "loan": format!("d{days}"),
                       "fine": "f", "limits": "l", "lost": "x"})
            })
            .collect();
        RulesTable::from_value(json!({
            "policies": {
                "loan": loans,
                "fine": {"f": {"points": 1, "per": "day"}},
                "limits": {"l": {}},
                "lost": {"x": {"aged_to_lost_after_days": 60, "replacement_cost": 20}},
            },
            "rules": rules,
        }))
        .unwrap()
    }

    fn days(t: &RulesTable, g: &str, i: &str, b: &str) -> u64 {
        let resolved = t.resolve(g, i, b);
        assert_eq!(resolved.row, t.resolve_row_by_scan(g, i, b), "{g} {i} {b}");
        resolved.loan.policy.period.amount
    }

    #[test]
    fn the_issues_example_a_students_dvd_gets_the_seven_day_loan() {
        let t = table(&[
            ("*", "*", "*", 21),
            ("student", "*", "*", 14),
            ("*", "dvd", "*", 7),
        ]);
        assert_eq!(days(&t, "student", "dvd", "main"), 7);
        assert_eq!(days(&t, "adult", "book", "main"), 21);
        assert_eq!(days(&t, "student", "book", "main"), 14);
        assert_eq!(days(&t, "adult", "dvd", "north"), 7);
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    }

    #[test]
    fn more_specific_fields_win_over_precedence_and_order() {
        // group + branch (2 fields) beats item type alone (1 field), wherever it stands.
        let t = table(&[
            ("*", "*", "*", 1),
            ("student", "*", "main", 2),
            ("*", "dvd", "*", 3),
        ]);
        assert_eq!(days(&t, "student", "dvd", "main"), 2);
        // all three beat every two.
        let t = table(&[
            ("*", "*", "*", 1),
            ("student", "dvd", "main", 9),
            ("*", "dvd", "main", 2),
            ("student", "dvd", "*", 3),
        ]);
        assert_eq!(days(&t, "student", "dvd", "main"), 9);
        assert_eq!(days(&t, "adult", "dvd", "main"), 2);
    }

    #[test]
    fn item_type_outranks_branch_outranks_group() {
        // One field each, in every order: item type > branch > group.
        for rows in [
            [
                ("student", "*", "*", 3),
                ("*", "*", "main", 2),
                ("*", "dvd", "*", 1),
            ],
            [
                ("*", "dvd", "*", 1),
                ("*", "*", "main", 2),
                ("student", "*", "*", 3),
            ],
        ] {
            let mut all = vec![("*", "*", "*", 99)];
            all.extend(rows);
            let t = table(&all);
            assert_eq!(days(&t, "student", "dvd", "main"), 1);
            assert_eq!(days(&t, "student", "book", "main"), 2);
            assert_eq!(days(&t, "student", "book", "north"), 3);
            assert_eq!(days(&t, "adult", "book", "north"), 99);
        }
        // Two fields each: item + branch > item + group > branch + group.
        for rows in [
            [
                ("student", "*", "main", 3),
                ("student", "dvd", "*", 2),
                ("*", "dvd", "main", 1),
            ],
            [
                ("*", "dvd", "main", 1),
                ("student", "dvd", "*", 2),
                ("student", "*", "main", 3),
            ],
        ] {
            let mut all = vec![("*", "*", "*", 99)];
            all.extend(rows);
            let t = table(&all);
            assert_eq!(days(&t, "student", "dvd", "main"), 1);
            assert_eq!(days(&t, "student", "dvd", "north"), 2);
            assert_eq!(days(&t, "student", "book", "main"), 3);
        }
    }

    #[test]
    fn of_two_identical_keys_the_later_row_wins_and_the_earlier_is_reported() {
        let t = table(&[
            ("*", "*", "*", 21),
            ("*", "dvd", "*", 7),
            ("*", "dvd", "*", 3),
        ]);
        assert_eq!(days(&t, "adult", "dvd", "main"), 3);
        assert_eq!(t.resolve_row("adult", "dvd", "main"), 3);
        assert_eq!(t.warnings(), &[Warning::Shadowed { row: 2, by: 3 }]);
        // Two `* * *` rows: the later is the fallback.
        let t = table(&[("*", "*", "*", 21), ("*", "*", "*", 28)]);
        assert_eq!(days(&t, "a", "b", "c"), 28);
        assert_eq!(t.warnings(), &[Warning::Shadowed { row: 1, by: 2 }]);
    }

    #[test]
    fn explain_names_the_winner_and_why_each_other_match_lost() {
        let t = table(&[
            ("*", "*", "*", 21),
            ("student", "*", "*", 14),
            ("*", "dvd", "*", 5),
            ("*", "dvd", "*", 7),
            ("*", "book", "*", 30),
        ]);
        let e = t.explain("student", "dvd", "main");
        assert_eq!(e.winner.row, 4);
        assert_eq!(e.policies.loan.name, "d7");
        let why: Vec<_> = e.beaten.iter().map(|b| (b.rule.row, b.because)).collect();
        assert_eq!(
            why,
            [
                (1, LostBecause::FewerSpecificFields),
                (2, LostBecause::LowerPrecedence),
                (3, LostBecause::EarlierRow),
            ]
        );
    }

    #[test]
    fn toml_and_json_load_the_same_table() {
        let toml_text = r#"
            [policies.loan.fixed-term]
            period = "2 weeks"
            schedule = "fixed"
            cap_date = 2026-06-30
            closed_day = "next_open"
            max_renewals = 2
            renew_from = "now"
            item_limit = 5
            [policies.fine.hourly]
            points = 1
            per = "hour"
            grace = "2 hours"
            charge_grace = true
            count_closed_days = true
            max_per_loan = 50
            forgive_on_renewal = true
            [policies.limits.adult]
            max_loans = 30
            max_overdue = 5
            max_fees_owed = 100
            card_expiry_days = 365
            [policies.lost.standard]
            aged_to_lost_after_days = 60
            replacement_cost = 20
            processing_fee = 5
            refund_window_days = 365
            [[rules]]
            group = "*"
            loan = "fixed-term"
            fine = "hourly"
            limits = "adult"
            lost = "standard"
        "#;
        let from_toml = RulesTable::from_toml(toml_text).unwrap();
        let json_text = serde_json::to_string(&json!({
            "policies": {
                "loan": {"fixed-term": {"period": "2 weeks", "schedule": "fixed", "cap_date": "2026-06-30",
                    "closed_day": "next_open", "max_renewals": 2, "renew_from": "now", "item_limit": 5}},
                "fine": {"hourly": {"points": 1, "per": "hour", "grace": "2 hours", "charge_grace": true,
                    "count_closed_days": true, "max_per_loan": 50, "forgive_on_renewal": true}},
                "limits": {"adult": {"max_loans": 30, "max_overdue": 5, "max_fees_owed": 100, "card_expiry_days": 365}},
                "lost": {"standard": {"aged_to_lost_after_days": 60, "replacement_cost": 20,
                    "processing_fee": 5, "refund_window_days": 365}},
            },
            "rules": [{"loan": "fixed-term", "fine": "hourly", "limits": "adult", "lost": "standard"}],
        }))
        .unwrap();
        let from_json = RulesTable::from_json(&json_text).unwrap();
        let (a, b) = (
            from_toml.resolve("x", "y", "z"),
            from_json.resolve("x", "y", "z"),
        );
        assert_eq!(a, b);
        assert_eq!(a.loan.policy.schedule, super::super::Schedule::Fixed);
        assert_eq!(a.loan.policy.cap_date.unwrap().to_string(), "2026-06-30");
        assert_eq!(a.fine.policy.grace.unwrap().to_string(), "2 hours");
        assert_eq!(a.limits.policy.card_expiry_days, Some(365));
        assert_eq!(a.lost.policy.processing_fee, 5);
        assert_eq!(from_toml.rules(), from_json.rules());
    }

    /// An edit to a valid file.
    type Change = Box<dyn FnOnce(&mut Value)>;

    /// A valid file as JSON, with `change` applied to it.
    fn with(change: impl FnOnce(&mut Value)) -> Result<RulesTable, RulesError> {
        let mut file = json!({
            "policies": {
                "loan": {"std": {"period": "21 days"}},
                "fine": {"std": {"points": 1, "per": "day"}},
                "limits": {"std": {}},
                "lost": {"std": {"aged_to_lost_after_days": 60, "replacement_cost": 20}},
            },
            "rules": [
                {"loan": "std", "fine": "std", "limits": "std", "lost": "std"},
                {"group": "student", "loan": "std", "fine": "std", "limits": "std", "lost": "std"},
            ],
        });
        change(&mut file);
        RulesTable::from_value(file)
    }

    #[test]
    fn every_bad_input_is_refused_naming_its_row_or_policy_and_field() {
        assert!(with(|_| {}).is_ok());
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|f| f["rules"][0]["group"] = json!("adult")), "no `* * *` row"),
            (Box::new(|f| f["rules"] = json!([])), "no `* * *` row"),
            (Box::new(|f| f["rules"][1]["loan"] = json!("nope")),
             "rule 2, field loan: names the loan policy \"nope\", which does not exist; the loan policies are std"),
            (Box::new(|f| f["rules"][1]["lost"] = Value::Null), "rule 2, field lost: is required"),
            (Box::new(|f| f["rules"][0]["colour"] = json!("red")), "rule 1, field colour: is not a field here"),
            (Box::new(|f| f["rules"][1]["group"] = json!("")), "rule 2, field group: group must not be empty"),
            (Box::new(|f| f["rules"][1]["branch"] = json!(3)), "rule 2, field branch: must be a string, not a number"),
            (Box::new(|f| f["rules"][1] = json!("x")), "rule 2, field *: a rule must be a table"),
            (Box::new(|f| f["policies"]["loan"]["std"]["period"] = json!("0 days")),
             "loan policy \"std\", field period: is \"0 days\"; it must be longer than zero"),
            (Box::new(|f| f["policies"]["loan"]["std"]["period"] = json!(-3)),
             "loan policy \"std\", field period: must be a string, not a number"),
            (Box::new(|f| f["policies"]["loan"]["std"]["period"] = json!("3 fortnights")),
             "loan policy \"std\", field period: is \"3 fortnights\""),
            (Box::new(|f| f["policies"]["loan"]["std"]["period"] = json!("9999999999999 weeks")),
             "field period: is \"9999999999999 weeks\"; it must be at most"),
            (Box::new(|f| f["policies"]["loan"]["std"]["schedule"] = json!("fixed")),
             "loan policy \"std\", field cap_date: is required by schedule = \"fixed\""),
            (Box::new(|f| f["policies"]["loan"]["std"]["cap_date"] = json!("2026-02-30")),
             "loan policy \"std\", field cap_date: is \"2026-02-30\", not a date"),
            (Box::new(|f| f["policies"]["loan"]["std"]["closed_day"] = json!("skip")),
             "field closed_day: is \"skip\", not one of \"keep\", \"previous_open\", \"next_open\""),
            (Box::new(|f| f["policies"]["loan"]["std"]["max_renewals"] = json!(-1)),
             "loan policy \"std\", field max_renewals: must be a whole number from 0"),
            (Box::new(|f| f["policies"]["fine"]["std"]["max_per_loan"] = json!(crate::ids::MAX_AMOUNT + 1)),
             "fine policy \"std\", field max_per_loan: 9007199254740992 is over the largest amount"),
            (Box::new(|f| f["policies"]["fine"]["std"]["points"] = json!(1.5)),
             "fine policy \"std\", field points: must be a whole number"),
            (Box::new(|f| f["policies"]["fine"]["std"]["per"] = json!("week")),
             "fine policy \"std\", field per: is \"week\", not one of \"day\", \"hour\""),
            (Box::new(|f| f["policies"]["fine"]["std"]["charge_grace"] = json!("yes")),
             "fine policy \"std\", field charge_grace: must be true or false"),
            (Box::new(|f| f["policies"]["limits"]["std"]["card_expiry_days"] = json!(0)),
             "limits policy \"std\", field card_expiry_days: must be at least 1 day"),
            (Box::new(|f| f["policies"]["lost"]["std"]["replacement_cost"] = json!(u64::MAX)),
             "lost policy \"std\", field replacement_cost: 18446744073709551615 is over the largest amount"),
            (Box::new(|f| f["policies"]["lost"]["std"]["extra"] = json!(1)),
             "lost policy \"std\", field extra: is not a field here; the fields are aged_to_lost_after_days"),
            (Box::new(|f| f["policies"]["loans"] = json!({})),
             "policies.loans: is not a kind of policy"),
            (Box::new(|f| f["rule"] = json!([])), "rule: is not a part of a rules file"),
            (Box::new(|f| f["policies"]["loan"]["bad name "] = json!({"period": "1 day"})),
             "loan policy \"bad name \", field name"),
        ];
        for (change, says) in cases {
            let err = with(change).unwrap_err();
            assert!(
                err.to_string().contains(says),
                "{err}\n  should say: {says}"
            );
            let lifted = crate::Error::from(err.clone());
            assert_eq!(lifted.code(), crate::ErrorCode::InvalidInput);
            assert!(lifted.to_string().contains(says), "{lifted}");
        }
    }

    #[test]
    fn syntax_errors_say_which_format() {
        let err = RulesTable::from_toml("[[rules]\n").unwrap_err();
        assert!(
            matches!(err, RulesError::Syntax { format: "TOML", .. }),
            "{err}"
        );
        let err = RulesTable::from_json("{").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the rules file is not valid JSON"),
            "{err}"
        );
        assert_eq!(Format::for_file_name("a/RULES.JSON"), Format::Json);
        assert_eq!(Format::for_file_name("rules.toml"), Format::Toml);
    }

    #[test]
    fn policies_no_row_names_are_reported() {
        let t = with(|f| f["policies"]["loan"]["spare"] = json!({"period": "1 week"})).unwrap();
        assert_eq!(
            t.warnings(),
            &[Warning::UnusedPolicy {
                kind: PolicyKind::Loan,
                name: "spare".into()
            }]
        );
        assert_eq!(
            t.warnings()[0].to_string(),
            "loan policy \"spare\" is named by no rule"
        );
    }

    /// The reference: score every row from its fields alone, written independently of the index.
    fn reference(rows: &[(&str, &str, &str)], g: &str, i: &str, b: &str) -> usize {
        let mut best: Option<((usize, [bool; 3]), usize)> = None;
        for (n, &(rg, ri, rb)) in rows.iter().enumerate() {
            let fits = |field: &str, value: &str| field == "*" || field == value;
            if !(fits(rg, g) && fits(ri, i) && fits(rb, b)) {
                continue;
            }
            // (how many specific, then item type, branch, group specific), then the row.
            let specific = [ri != "*", rb != "*", rg != "*"];
            let score = (specific.iter().filter(|s| **s).count(), specific);
            if best.as_ref().map_or(true, |(s, _)| score >= *s) {
                best = Some((score, n + 1));
            }
        }
        best.map_or(0, |(_, row)| row)
    }

    fn field() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("*"), Just("*"), Just("a"), Just("b"), Just("c")]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn the_index_resolves_as_scoring_every_row(
            rows in proptest::collection::vec((field(), field(), field()), 0..40),
            lookups in proptest::collection::vec(
                (prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
                 prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
                 prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")]), 1..30),
        ) {
            let mut all = vec![("*", "*", "*")];
            all.extend(rows);
            let numbered: Vec<_> = all.iter().enumerate().map(|(n, &(g, i, b))| (g, i, b, n as u64 + 1)).collect();
            let t = table(&numbered);
            for (g, i, b) in lookups {
                let expected = reference(&all, g, i, b);
                prop_assert_eq!(t.resolve_row(g, i, b), expected);
                prop_assert_eq!(t.resolve_row_by_scan(g, i, b), expected);
                let e = t.explain(g, i, b);
                prop_assert_eq!(e.winner.row, expected);
                prop_assert_eq!(e.policies.loan.policy.period.amount, expected as u64);
                let matching = all.iter().filter(|&&(rg, ri, rb)| {
                    [(rg, g), (ri, i), (rb, b)].iter().all(|&(f, v)| f == "*" || f == v)
                }).count();
                prop_assert_eq!(e.beaten.len() + 1, matching);
            }
        }
    }
}
