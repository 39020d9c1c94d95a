//! The names of the documents a tenant keeps by name — detector rules, playbooks, problem
//! records: one rule for all of them, so a name that works for one works for the others.

use crate::error::ApiError;

/// 1 to 64 lowercase letters, digits, `-` or `_`; otherwise a 422 naming the `name` field.
pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1 to 64 lowercase letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}
