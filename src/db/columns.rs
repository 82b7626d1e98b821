//! Reading a row's columns by position, for the rows of the hottest statements (issue #24).
//! `row.try_get("name")` hashes the name (SipHash) and probes sqlx's map of the statement's
//! columns. That is about 30 ns a column, and a `GET /user` or a refresh reads 30–40 of them.
//! Where a statement lists a run of columns in a known order (`user_columns!()`), [`Columns`]
//! finds the first by name and walks the rest. Each name is still compared with the one the
//! statement gave, so a reordered column list is an error, never a wrong value.

use sqlx::postgres::PgRow;
use sqlx::{Column, Decode, Postgres, Row, Type};

/// A cursor over a row's columns, from a named one on.
pub struct Columns<'r> {
    row: &'r PgRow,
    next: usize,
}

impl<'r> Columns<'r> {
    /// The cursor at the column `name`.
    pub fn starting_at(row: &'r PgRow, name: &str) -> sqlx::Result<Self> {
        let next = row
            .columns()
            .iter()
            .position(|column| column.name() == name)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(name.to_owned()))?;
        Ok(Columns { row, next })
    }

    /// The column under the cursor, which must be `name`, decoded; the cursor moves on.
    pub fn read<T: Decode<'r, Postgres> + Type<Postgres>>(&mut self, name: &str) -> sqlx::Result<T> {
        let index = self.take(name)?;
        self.row.try_get(index)
    }

    /// Passes over the column `name`, which must be under the cursor.
    pub fn skip(&mut self, name: &str) -> sqlx::Result<()> {
        self.take(name).map(drop)
    }

    fn take(&mut self, name: &str) -> sqlx::Result<usize> {
        let index = self.next;
        match self.row.columns().get(index) {
            Some(column) if column.name() == name => {
                self.next += 1;
                Ok(index)
            }
            _ => Err(sqlx::Error::ColumnNotFound(format!(
                "{name} (expected at position {index})"
            ))),
        }
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
