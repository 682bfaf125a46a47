//! The rules table: its rows, loading and validation, resolution and its explanation.

use super::branches::{read_calendars, read_groups};
use super::fields::{file_error, json_type, Fields, Place};
use super::index::{rank, Index, BRANCH, GROUP, ITEM_TYPE};
use super::{
    Calendar, FinePolicy, LimitsPolicy, LoanPolicy, LostPolicy, PolicyKind, RequestPolicy,
    RulesError, Warning,
};
use crate::ids::validate_id;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

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
    /// The name of its request policy (holds), if it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The policies' positions in the table's lists: loan, fine, limits, lost.
    #[serde(skip)]
    policies: [usize; 4],
    /// Its request policy's position, if it names one.
    #[serde(skip)]
    request_policy: Option<usize>,
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
    /// Its request policy, if the row names one (else holds take the defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'t Named<RequestPolicy>>,
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

/// A loaded, validated rules table with its precomputed resolution, and the branches'
/// calendars and the member groups the file declares.
#[derive(Debug, Clone)]
pub struct RulesTable {
    loans: Vec<Named<LoanPolicy>>,
    fines: Vec<Named<FinePolicy>>,
    limits: Vec<Named<LimitsPolicy>>,
    lost: Vec<Named<LostPolicy>>,
    requests: Vec<Named<RequestPolicy>>,
    /// `[calendars.BRANCH]`, by branch (shared: a clone of the table does not copy them).
    calendars: Arc<BTreeMap<String, Calendar>>,
    /// `groups`, in file order, when given.
    groups: Option<Arc<[String]>>,
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
        let calendars = top.remove("calendars");
        let groups = top.remove("groups");
        if let Some(extra) = top.keys().next() {
            return Err(file_error(
                extra,
                "is not a part of a rules file; the parts are `policies`, `rules`, `calendars` \
                 and `groups`",
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
            requests: read_kind(&mut policies, PolicyKind::Request, RequestPolicy::read)?,
            calendars: Arc::new(read_calendars(calendars)?),
            groups: read_groups(groups)?.map(Arc::from),
            rules: Vec::new(),
            index: Index::default(),
            warnings: Vec::new(),
        };
        if let Some(extra) = policies.keys().next() {
            return Err(file_error(
                &format!("policies.{extra}"),
                "is not a kind of policy; the kinds are loan, fine, limits, lost, request",
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
        if let (Match::Is(g), Some(known)) = (&group, self.groups()) {
            if !known.contains(g) {
                let reason = if known.is_empty() {
                    format!("names group {g:?}, but `groups` is empty")
                } else {
                    format!(
                        "names group {g:?}, which is not in `groups`; declared: {}",
                        known.join(", ")
                    )
                };
                return Err(f.place().error("group", reason));
            }
        }
        if let Match::Is(b) = &branch {
            if !self.knows_branch(b) {
                let known: Vec<&str> = self.branches().collect();
                return Err(f.place().error(
                    "branch",
                    format!(
                        "names branch {b:?}, which has no calendar; declared: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
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
        let request = f.opt_text("request")?;
        let request_policy = match &request {
            None => None,
            Some(name) => Some(self.find(PolicyKind::Request, name).ok_or_else(|| {
                let known = self.names(PolicyKind::Request);
                let reason = if known.is_empty() {
                    format!("names the request policy {name:?}, but there are no request policies; add [policies.request.{name}]")
                } else {
                    format!("names the request policy {name:?}, which does not exist; the request policies are {}", known.join(", "))
                };
                f.place().error("request", reason)
            })?),
        };
        for branch in request_policy
            .and_then(|i| self.requests[i].policy.pickup_branches.as_ref())
            .into_iter()
            .flatten()
        {
            if !self.knows_branch(branch) {
                return Err(f.place().error(
                    "request",
                    format!("its request policy lets holds be collected at branch {branch:?}, which has no calendar"),
                ));
            }
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
            request,
            policies,
            request_policy,
        })
    }

    fn names(&self, kind: PolicyKind) -> Vec<&str> {
        match kind {
            PolicyKind::Loan => self.loans.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Fine => self.fines.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Limits => self.limits.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Lost => self.lost.iter().map(|p| p.name.as_str()).collect(),
            PolicyKind::Request => self.requests.iter().map(|p| p.name.as_str()).collect(),
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
        for (p, name) in self.names(PolicyKind::Request).into_iter().enumerate() {
            if !self.rules.iter().any(|r| r.request_policy == Some(p)) {
                warnings.push(Warning::UnusedPolicy {
                    kind: PolicyKind::Request,
                    name: name.to_owned(),
                });
            }
        }
        warnings
    }

    /// The calendar of `branch` (`[calendars.BRANCH]`), or `None` for a branch without one.
    pub fn calendar(&self, branch: &str) -> Option<&Calendar> {
        self.calendars.get(branch)
    }

    /// The names of the branches that have a calendar, sorted.
    pub fn branches(&self) -> impl Iterator<Item = &str> {
        self.calendars.keys().map(String::as_str)
    }

    /// Whether `branch` is a branch of this library: true when the file declares no calendars
    /// at all (then every branch is accepted) or declares one for `branch`.
    pub fn knows_branch(&self, branch: &str) -> bool {
        self.calendars.is_empty() || self.calendars.contains_key(branch)
    }

    /// The member groups the file lists (`groups`), in file order; `None` when it has no
    /// `groups` (an empty list is `Some(&[])`: no group is known).
    pub fn groups(&self) -> Option<&[String]> {
        self.groups.as_deref()
    }

    /// Whether `group` is a member group of this library: true when the file gives no `groups`
    /// list, or lists `group`.
    pub fn knows_group(&self, group: &str) -> bool {
        self.groups
            .as_ref()
            .is_none_or(|groups| groups.iter().any(|g| g == group))
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

    /// The request policies, by name.
    pub fn request_policies(&self) -> &[Named<RequestPolicy>] {
        &self.requests
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
            request: rule.request_policy.map(|i| &self.requests[i]),
        }
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

    /// The local date `n` days after Monday 2 March 2026 (0 is that Monday, 6 the Sunday).
    fn march(n: i64) -> jiff::civil::Date {
        use jiff::ToSpan;
        jiff::civil::date(2026, 3, 2).checked_add(n.days()).unwrap()
    }

    /// Each weekday's hours, Monday first, as `"HH:MM-HH:MM"` (`-` when closed).
    fn week_of(calendar: &Calendar) -> Vec<String> {
        (0..7)
            .map(|n| match calendar.hours_on(march(n)) {
                Some(h) => format!(
                    "{}-{}",
                    h.opens.strftime("%H:%M"),
                    h.closes.strftime("%H:%M")
                ),
                None => "-".into(),
            })
            .collect()
    }

    const CALENDARS_TOML: &str = r#"
        groups = ["adult", "student", "staff"]

        [calendars.main]
        zone = "Europe/Berlin"
        hours = { mon = "09:00-18:00", tue = "09:00-18:00", wed = "09:00-18:00", thu = "09:00-20:00", fri = "09:00-18:00", sat = "10:00-14:00" }
        closed = ["2026-03-16", 2026-12-25]

        [calendars.east]
        zone = "Asia/Seoul"
        hours = { sun = "10:00-24:00", wed = "08:30 - 12:00" }

        [policies.loan.std]
        period = "21 days"
        [policies.fine.std]
        points = 1
        per = "day"
        [policies.limits.std]
        [policies.lost.std]
        aged_to_lost_after_days = 60
        replacement_cost = 20

        [[rules]]
        loan = "std"
        fine = "std"
        limits = "std"
        lost = "std"

        [[rules]]
        group = "student"
        branch = "east"
        loan = "std"
        fine = "std"
        limits = "std"
        lost = "std"
    "#;

    #[test]
    fn calendars_and_groups_are_read_with_the_rules() {
        let t = RulesTable::from_toml(CALENDARS_TOML).unwrap();
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        assert_eq!(t.branches().collect::<Vec<_>>(), ["east", "main"]);
        let main = t.calendar("main").unwrap();
        assert_eq!(main.zone(), "Europe/Berlin");
        assert_eq!(
            week_of(main),
            [
                "09:00-18:00",
                "09:00-18:00",
                "09:00-18:00",
                "09:00-20:00",
                "09:00-18:00",
                "10:00-14:00",
                "-"
            ]
        );
        // Closed dates, quoted or (in TOML) not: closed although their weekday is open.
        assert!(!main.is_open_on(march(14)));
        assert!(main.is_open_on(march(15)));
        assert!(!main.is_open_on(jiff::civil::date(2026, 12, 25)));
        assert!(main.is_open_on(jiff::civil::date(2026, 12, 24)));
        let east = t.calendar("east").unwrap();
        assert_eq!(east.zone(), "Asia/Seoul");
        assert_eq!(
            week_of(east),
            ["-", "-", "08:30-12:00", "-", "-", "-", "10:00-23:59"]
        );
        // 24:00 closes at the day's very end.
        assert_eq!(
            east.hours_on(march(6)).unwrap().closes,
            jiff::civil::Time::MAX
        );
        assert!(t.calendar("north").is_none());
        assert!(t.knows_branch("main") && t.knows_branch("east"));
        assert!(!t.knows_branch("north") && !t.knows_branch("*"));
        assert_eq!(
            t.groups(),
            Some(&["adult".to_owned(), "student".into(), "staff".into()][..])
        );
        assert!(t.knows_group("staff") && !t.knows_group("child"));
        assert_eq!(t.resolve("student", "book", "east").row, 2);
        assert_eq!(t.resolve("student", "book", "main").row, 1);
    }

    #[test]
    fn without_calendars_or_groups_every_branch_and_group_is_known() {
        let t = with(|f| f["rules"][1]["branch"] = json!("anywhere")).unwrap();
        assert_eq!(t.branches().count(), 0);
        assert!(t.calendar("anywhere").is_none());
        assert!(t.knows_branch("anywhere") && t.knows_branch("main"));
        assert_eq!(t.groups(), None);
        assert!(t.knows_group("student") && t.knows_group("anyone"));
        // Null is the same as leaving them out; an empty list of groups knows none.
        let t = with(|f| {
            f["calendars"] = Value::Null;
            f["groups"] = Value::Null;
        })
        .unwrap();
        assert!(t.knows_branch("main") && t.knows_group("student"));
        let t = with(|f| {
            f["groups"] = json!([]);
            f["rules"][1]["group"] = json!("*");
        })
        .unwrap();
        assert_eq!(t.groups(), Some(&[][..]));
        assert!(!t.knows_group("student"));
    }

    #[test]
    fn toml_and_json_calendars_are_the_same() {
        let from_toml = RulesTable::from_toml(CALENDARS_TOML).unwrap();
        let hours = json!({"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00",
                           "thu": "09:00-20:00", "fri": "09:00-18:00", "sat": "10:00-14:00",
                           "sun": null});
        let json_text = json!({
            "groups": ["adult", "student", "staff"],
            "calendars": {
                "main": {"zone": "Europe/Berlin", "hours": hours,
                         "closed": ["2026-03-16", "2026-12-25"]},
                "east": {"zone": "Asia/Seoul",
                         "hours": {"sun": "10:00-24:00", "wed": "08:30-12:00"}},
            },
            "policies": {
                "loan": {"std": {"period": "21 days"}},
                "fine": {"std": {"points": 1, "per": "day"}},
                "limits": {"std": {}},
                "lost": {"std": {"aged_to_lost_after_days": 60, "replacement_cost": 20}},
            },
            "rules": [
                {"loan": "std", "fine": "std", "limits": "std", "lost": "std"},
                {"group": "student", "branch": "east", "loan": "std", "fine": "std",
                 "limits": "std", "lost": "std"},
            ],
        })
        .to_string();
        let from_json = RulesTable::from_json(&json_text).unwrap();
        assert_eq!(
            from_toml.branches().collect::<Vec<_>>(),
            from_json.branches().collect::<Vec<_>>()
        );
        for branch in ["main", "east"] {
            let (a, b) = (
                from_toml.calendar(branch).unwrap(),
                from_json.calendar(branch).unwrap(),
            );
            assert_eq!(a.zone(), b.zone());
            assert_eq!(week_of(a), week_of(b));
            for day in 0..400 {
                assert_eq!(
                    a.is_open_on(march(day)),
                    b.is_open_on(march(day)),
                    "{branch}"
                );
            }
        }
        assert_eq!(from_toml.groups(), from_json.groups());
        assert_eq!(from_toml.rules(), from_json.rules());
    }

    #[test]
    fn the_example_in_docs_rules_md_loads_and_resolves_as_it_says() {
        let doc = include_str!("../../../docs/rules.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + doc[start..].find("```").unwrap();
        let t = RulesTable::from_toml(&doc[start..end]).unwrap();
        assert_eq!(t.branches().collect::<Vec<_>>(), ["main", "north"]);
        assert_eq!(t.calendar("north").unwrap().zone(), "Europe/Berlin");
        assert!(t.knows_group("staff") && !t.knows_group("child"));
        assert_eq!(t.resolve("student", "dvd", "main").loan.name, "short");
        assert_eq!(t.resolve("student", "book", "north").loan.name, "student");
        assert_eq!(t.resolve("adult", "book", "main").loan.name, "standard");
    }

    /// The valid file of [`with`] plus a valid calendar for `main` and `groups`, with `change`
    /// applied to it.
    fn with_calendar(change: impl FnOnce(&mut Value)) -> Result<RulesTable, RulesError> {
        with(|f| {
            f["groups"] = json!(["adult", "student"]);
            f["calendars"] = json!({
                "main": {"zone": "Europe/Berlin", "hours": {"mon": "09:00-18:00", "sat": "10:00-14:00"},
                         "closed": ["2026-12-25"]},
                "east": {"zone": "Asia/Seoul", "hours": {"tue": "09:00-18:00"}},
            });
            change(f);
        })
    }

    #[test]
    fn every_bad_calendar_or_group_is_refused_naming_it_and_the_field() {
        assert!(with_calendar(|_| {}).is_ok());
        let a_year: Vec<String> = (0..366).map(|n| march(n).to_string()).collect();
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|f| f["calendars"]["main"]["zone"] = json!("Mars/Olympus")),
             "calendar \"main\", field zone: time zone \"Mars/Olympus\" is unknown; use an IANA name such as \"Asia/Seoul\" or \"America/New_York\""),
            (Box::new(|f| f["calendars"]["main"]["zone"] = Value::Null),
             "calendar \"main\", field zone: is required"),
            (Box::new(|f| f["calendars"]["main"]["zone"] = json!(1)),
             "calendar \"main\", field zone: must be a string, not a number"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!("9-18")),
             "calendar \"main\", field hours.mon: is \"9-18\"; opening hours are written \"HH:MM-HH:MM\", like \"09:00-18:00\""),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!("09:00")),
             "calendar \"main\", field hours.mon: is \"09:00\"; opening hours are written \"HH:MM-HH:MM\", like \"09:00-18:00\""),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!("09:00-18:00-20:00")),
             "calendar \"main\", field hours.mon: is \"09:00-18:00-20:00\"; opening hours are written \"HH:MM-HH:MM\", like \"09:00-18:00\""),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!("09:00-25:00")),
             "calendar \"main\", field hours.mon: is \"09:00-25:00\"; 25:00 is not a time of day (00:00 to 23:59, and 24:00 to close at midnight)"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["sat"] = json!("24:00-24:00")),
             "calendar \"main\", field hours.sat: is \"24:00-24:00\"; 24:00 is not a time of day (00:00 to 23:59, and 24:00 to close at midnight)"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["sat"] = json!("10:60-14:00")),
             "calendar \"main\", field hours.sat: is \"10:60-14:00\"; 10:60 is not a time of day (00:00 to 23:59, and 24:00 to close at midnight)"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["sat"] = json!("14:00-10:00")),
             "calendar \"main\", field hours.sat: on Saturday, the library closes at 10:00:00 but opens at 14:00:00; closing must be after opening"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!("09:00-09:00")),
             "calendar \"main\", field hours.mon: on Monday, the library closes at 09:00:00 but opens at 09:00:00; closing must be after opening"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["monday"] = json!("09:00-18:00")),
             "calendar \"main\", field hours.monday: is not a weekday; the weekdays are mon, tue, wed, thu, fri, sat, sun"),
            (Box::new(|f| f["calendars"]["main"]["hours"]["mon"] = json!(9)),
             "calendar \"main\", field hours.mon: must be a string \"HH:MM-HH:MM\", not a number"),
            (Box::new(|f| f["calendars"]["main"]["hours"] = json!({})),
             "calendar \"main\", field hours: the library is never open: give at least one weekday opening hours"),
            (Box::new(|f| f["calendars"]["main"]["hours"] = json!({"mon": null})),
             "calendar \"main\", field hours: the library is never open: give at least one weekday opening hours"),
            (Box::new(|f| f["calendars"]["main"]["hours"] = json!("09:00-18:00")),
             "calendar \"main\", field hours: must be a table of weekdays, like { mon = \"09:00-18:00\" }, not a string"),
            (Box::new(|f| f["calendars"]["main"]["hours"] = Value::Null),
             "calendar \"main\", field hours: is required: the opening hours by weekday, like { mon = \"09:00-18:00\" } (a weekday left out is closed)"),
            (Box::new(move |f| f["calendars"]["main"]["closed"] = json!(a_year)),
             "calendar \"main\", field closed: the closed dates close every day from 2026-03-02 to 2027-03-02, a year or more; a loan could never fall due"),
            (Box::new(|f| f["calendars"]["main"]["closed"] = json!(["2026-12-25", "2026-02-30"])),
             "calendar \"main\", field closed: is \"2026-02-30\", not a date written YYYY-MM-DD that exists"),
            (Box::new(|f| f["calendars"]["main"]["closed"] = json!(["25.12.2026"])),
             "calendar \"main\", field closed: is \"25.12.2026\", not a date written YYYY-MM-DD that exists"),
            (Box::new(|f| f["calendars"]["main"]["closed"] = json!(["2026-12-25", 20261226])),
             "calendar \"main\", field closed: entry 2 must be a date written YYYY-MM-DD, not a number"),
            (Box::new(|f| f["calendars"]["main"]["closed"] = json!("2026-12-25")),
             "calendar \"main\", field closed: must be an array of dates, like [\"2026-12-25\"], not a string"),
            (Box::new(|f| f["calendars"]["main"]["open"] = json!("09:00")),
             "calendar \"main\", field open: is not a field here; the fields are zone, hours, closed"),
            (Box::new(|f| f["calendars"]["main"] = json!("Europe/Berlin")),
             "calendar \"main\", field *: a calendar must be a table of fields, not a string"),
            (Box::new(|f| f["calendars"] = json!(["main"])),
             "calendars: must be a table of branches ([calendars.BRANCH]), not an array"),
            (Box::new(|f| f["calendars"]["main "] = json!({})),
             "calendar \"main \", field name: name \"main \" has leading or trailing whitespace"),
            (Box::new(|f| f["calendars"]["*"] = json!({})),
             "calendar \"*\", field name: \"*\" means any branch in a rule, so it cannot be a branch's name"),
            (Box::new(|f| f["groups"] = json!("adult")),
             "groups: must be an array of group names, like [\"adult\", \"student\"], not a string"),
            (Box::new(|f| f["groups"] = json!(["adult", 2])),
             "groups: entry 2 must be a string, not a number"),
            (Box::new(|f| f["groups"] = json!(["adult", ""])),
             "groups: group must not be empty"),
            (Box::new(|f| f["groups"] = json!(["adult", "student", "adult"])),
             "groups: \"adult\" is listed twice"),
            (Box::new(|f| f["groups"] = json!(["adult", "*"])),
             "groups: \"*\" means any group in a rule, so it cannot be a group's name"),
            (Box::new(|f| f["rules"][1]["branch"] = json!("north")),
             "rule 2, field branch: names branch \"north\", which has no calendar; declared: east, main"),
            (Box::new(|f| f["groups"] = json!(["adult", "staff"])),
             "rule 2, field group: names group \"student\", which is not in `groups`; declared: adult, staff"),
            (Box::new(|f| f["groups"] = json!([])),
             "rule 2, field group: names group \"student\", but `groups` is empty"),
        ];
        for (change, says) in cases {
            let err = with_calendar(change).unwrap_err();
            assert_eq!(err.to_string(), says);
            let lifted = crate::Error::from(err.clone());
            assert_eq!(lifted.code(), crate::ErrorCode::InvalidInput);
            assert!(lifted.to_string().contains(says), "{lifted}");
        }
        // The variant names the calendar and the field apart.
        assert_eq!(
            with_calendar(|f| f["calendars"]["east"]["zone"] = json!("Nowhere")).unwrap_err(),
            RulesError::Calendar {
                branch: "east".into(),
                field: "zone".into(),
                reason: "time zone \"Nowhere\" is unknown; use an IANA name such as \"Asia/Seoul\" or \"America/New_York\"".into(),
            }
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
            if best.as_ref().is_none_or(|(s, _)| score >= *s) {
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
