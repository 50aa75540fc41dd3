-- The fee rule table (计费规则) in force, its versions and its audit log.
-- Every change is one new row of fee_rule_versions (version = the previous
-- one + 1; the primary key makes two concurrent changes of one version
-- commit one and refuse the other), the rules it wrote or removed, and one
-- fee_rule_changes row per rule with its definition before and after.
-- Definitions are the TOML text of one rule, as fees::FeeRuleDefinition
-- writes it.
CREATE TABLE fee_rule_versions (
    version BIGINT PRIMARY KEY CHECK (version > 0),
    operator TEXT NOT NULL,
    reason TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

CREATE TABLE fee_rules (
    rule_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    -- The version that last wrote the rule.
    version BIGINT NOT NULL REFERENCES fee_rule_versions (version)
);

CREATE TABLE fee_rule_changes (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL REFERENCES fee_rule_versions (version),
    rule_id TEXT NOT NULL,
    before_definition TEXT,
    after_definition TEXT,
    CHECK (before_definition IS NOT NULL OR after_definition IS NOT NULL)
);
CREATE INDEX fee_rule_changes_rule ON fee_rule_changes (rule_id, id);
