//! DDL as the syncer reads it: each Query event is read once into a [`QueryClass`]; a DDL
//! becomes a [`DdlPlan`], one [`PlannedStatement`] per object, which filters, routes, the schema
//! tracker and execution all take.
//!
//! ```text
//! Query event --text::normalize (comments, executable comments)--> tokens
//!             --plan::plan_query--> Control | Dml | Ddl(DdlPlan) | Ignored | Unreadable
//! DdlPlan: [PlannedStatement { DdlStatement { kind, target, sql }, names + spans, AST }]
//!             --routed_sql (names replaced in place)--> statement for the downstream
//! ```
//!
//! [`text`] holds the rules for comments and executable comments, [`plan`] the grammar of the
//! statement forms and the split per object.

pub mod plan;
pub mod text;

pub use plan::{
    DdlPlan, DmlStatement, NameRole, NamedObject, PlannedStatement, QueryClass, plan_query,
    quoted_target,
};
pub use text::{ServerVersion, normalize};
