//! Why a rule did not convert, with a stable reason code for summaries.

/// A conversion failure. [`SigmaError::reason`] is the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigmaError {
    #[error("invalid YAML: {message}")]
    Yaml { message: String },
    #[error("not a valid Sigma rule: {message}")]
    InvalidRule { message: String },
    #[error("not a detection or correlation rule: {message}")]
    UnsupportedRuleType { message: String },
    #[error("unsupported modifier `{modifier}` at field `{field}`")]
    UnsupportedModifier { modifier: String, field: String },
    #[error("unsupported logsource {logsource}: {reason}")]
    UnsupportedLogsource { logsource: String, reason: String },
    #[error("field `{field}` has no Vigil mapping: {message}")]
    UnmappedField { field: String, message: String },
    #[error("unsupported value at field `{field}`: {message}")]
    UnsupportedValue { field: String, message: String },
    #[error("unsupported regex at field `{field}`: {message}")]
    UnsupportedRegex { field: String, message: String },
    #[error("bad condition: {message}")]
    BadCondition { message: String },
    #[error("{message}")]
    UnsupportedAggregation { message: String },
    #[error("{message}")]
    TooComplex { message: String },
    #[error("the generated query does not compile ({code}): {message}")]
    InvalidQuery { code: String, message: String },
    #[error("bad correlation: {message}")]
    BadCorrelation { message: String },
    #[error("unsupported correlation type `{kind}` (Vigil runs event_count, value_count, temporal, temporal_ordered)")]
    UnsupportedCorrelation { kind: String },
    #[error("the correlation references `{name}`, which is not among the imported rules")]
    UnknownRuleReference { name: String },
    #[error("the correlation's base rule `{name}` did not convert: {message}")]
    BaseRuleFailed { name: String, message: String },
    #[error("bad mapping: {message}")]
    BadMapping { message: String },
}

/// Every reason code, documented in docs/sigma.md.
pub const REASONS: &[&str] = &[
    "invalid_yaml",
    "invalid_rule",
    "unsupported_rule_type",
    "unsupported_modifier",
    "unsupported_logsource",
    "unmapped_field",
    "unsupported_value",
    "unsupported_regex",
    "bad_condition",
    "unsupported_aggregation",
    "too_complex",
    "invalid_query",
    "bad_correlation",
    "unsupported_correlation",
    "unknown_rule_reference",
    "base_rule_failed",
    "bad_mapping",
];

impl SigmaError {
    /// The stable reason code (one of [`REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            SigmaError::Yaml { .. } => "invalid_yaml",
            SigmaError::InvalidRule { .. } => "invalid_rule",
            SigmaError::UnsupportedRuleType { .. } => "unsupported_rule_type",
            SigmaError::UnsupportedModifier { .. } => "unsupported_modifier",
            SigmaError::UnsupportedLogsource { .. } => "unsupported_logsource",
            SigmaError::UnmappedField { .. } => "unmapped_field",
            SigmaError::UnsupportedValue { .. } => "unsupported_value",
            SigmaError::UnsupportedRegex { .. } => "unsupported_regex",
            SigmaError::BadCondition { .. } => "bad_condition",
            SigmaError::UnsupportedAggregation { .. } => "unsupported_aggregation",
            SigmaError::TooComplex { .. } => "too_complex",
            SigmaError::InvalidQuery { .. } => "invalid_query",
            SigmaError::BadCorrelation { .. } => "bad_correlation",
            SigmaError::UnsupportedCorrelation { .. } => "unsupported_correlation",
            SigmaError::UnknownRuleReference { .. } => "unknown_rule_reference",
            SigmaError::BaseRuleFailed { .. } => "base_rule_failed",
            SigmaError::BadMapping { .. } => "bad_mapping",
        }
    }

    /// A finer key for summaries: the reason plus the modifier or field it names
    /// (`unsupported_modifier fieldref`).
    pub fn detail_key(&self) -> String {
        match self {
            SigmaError::UnsupportedModifier { modifier, .. } => format!("{} {modifier}", self.reason()),
            SigmaError::UnmappedField { field, .. } => format!("{} {field}", self.reason()),
            SigmaError::UnsupportedLogsource { logsource, .. } => format!("{} {logsource}", self.reason()),
            _ => self.reason().to_string(),
        }
    }
}
