//! Reading a row's columns in the order its statement lists them, for the rows of the
//! hottest statements (issue #24). `row.try_get("name")` hashes the name (SipHash) and probes
//! sqlx's map of the statement's columns: about 30 ns a column, and a `GET /user` or a
//! refresh reads 30–40 of them. [`Columns`] instead looks for each name from where the last
//! one was found, which is usually the very next column. A column is still found by its
//! name, so a statement that lists them in another order gives an error, never a wrong value.

use sqlx::postgres::PgRow;
use sqlx::{Column, Decode, Postgres, Row, Type};

/// A cursor over a row's columns, read in the statement's order.
pub struct Columns<'r> {
    row: &'r PgRow,
    next: usize,
}

impl<'r> Columns<'r> {
    pub fn of(row: &'r PgRow) -> Self {
        Columns { row, next: 0 }
    }

    /// The first column named `name` after the last one read, decoded.
    pub fn read<T: Decode<'r, Postgres> + Type<Postgres>>(&mut self, name: &str) -> sqlx::Result<T> {
        let after = &self.row.columns()[self.next..];
        let Some(offset) = after.iter().position(|column| column.name() == name) else {
            return Err(sqlx::Error::ColumnNotFound(format!(
                "{name} (after column {})",
                self.next
            )));
        };
        let index = self.next + offset;
        self.next = index + 1;
        self.row.try_get(index)
    }
}

/// `read_in_order!(columns: a, b)` reads the columns `a` and `b`, in that order, into the
/// variables `a` and `b`, so a variable always has its column's name.
macro_rules! read_in_order {
    ($columns:ident: $($name:ident),+) => {
        $(let $name = $columns.read(stringify!($name))?;)+
    };
}
pub(crate) use read_in_order;
