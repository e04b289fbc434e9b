//! The enforcement gate: the one place in a session where a statement is decided.
//!
//! Nothing that carries a statement (Query, Parse, FunctionCall) reaches the upstream
//! without a `Permit` from here (`FrameWriter::push_statement` takes one).
//!
//! TODO(enforcement issue): `AllowAllStandIn` is a stand-in that permits everything.
//! It exists so the relay has its final shape; the enforcement issue replaces it with
//! analysis (pgward-sql) and a policy check (pgward-policy).

/// Evidence that a statement was decided and may be forwarded. Only this module can
/// make one.
#[derive(Debug)]
pub struct Permit {
    _evidence: (),
}

impl Permit {
    #[cfg(test)]
    pub(crate) fn for_tests() -> Permit {
        Permit { _evidence: () }
    }
}

/// What the gate is asked to decide.
#[derive(Debug, Clone, Copy)]
pub enum Decide<'a> {
    /// The SQL text of a Query or a Parse message (possibly several statements).
    Sql(&'a [u8]),
    /// A FunctionCall message naming a function by OID.
    FunctionCall { oid: u32 },
}

/// Why a statement may not be forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub message: String,
    pub hint: Option<String>,
}

/// The stand-in gate of the relay issue: permits every statement. Clearly not a
/// policy: it is replaced by the enforcement issue.
#[derive(Debug, Default, Clone)]
pub struct AllowAllStandIn;

impl AllowAllStandIn {
    pub fn decide(&self, _what: Decide<'_>) -> Result<Permit, Denied> {
        Ok(Permit { _evidence: () })
    }
}
