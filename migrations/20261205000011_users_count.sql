-- The admin list's X-Total-Count without a filter (issue #23): count(*) reads every row (or every index
-- entry) of _auth_users, 60 ms and more at a million users, on every page. Triggers keep
-- the number in a few counter rows instead: an insert adds, a delete subtracts, a truncate
-- resets, per statement (a bulk insert or an import is one update). Eight slots, picked by
-- the backend's pid, so that sign-ups on different connections do not queue behind one
-- row's lock; the total is their sum, exact in every transaction's snapshot like count(*).
-- The functions keep the migration's search_path, so a client with another one (psql, a
-- backend sharing the database) that inserts users still finds the counter.
create table _auth_users_count (
    slot smallint primary key,
    users bigint not null
);

create function _auth_users_count_inserted() returns trigger language plpgsql
set search_path from current as $$
begin
    update _auth_users_count set users = users + (select count(*) from inserted_users)
    where slot = pg_backend_pid() % 8;
    return null;
end
$$;

create function _auth_users_count_deleted() returns trigger language plpgsql
set search_path from current as $$
begin
    update _auth_users_count set users = users - (select count(*) from deleted_users)
    where slot = pg_backend_pid() % 8;
    return null;
end
$$;

create function _auth_users_count_truncated() returns trigger language plpgsql
set search_path from current as $$
begin
    update _auth_users_count set users = 0;
    return null;
end
$$;

-- Writers wait while the counter starts from the users there are.
lock table _auth_users in share row exclusive mode;
insert into _auth_users_count (slot, users) select slot, 0 from generate_series(0, 7) slot;
update _auth_users_count set users = (select count(*) from _auth_users) where slot = 0;
create trigger _auth_users_count_inserted after insert on _auth_users
    referencing new table as inserted_users for each statement execute function _auth_users_count_inserted();
create trigger _auth_users_count_deleted after delete on _auth_users
    referencing old table as deleted_users for each statement execute function _auth_users_count_deleted();
create trigger _auth_users_count_truncated after truncate on _auth_users
    for each statement execute function _auth_users_count_truncated();

-- Private like every _auth_* table (see 20261123000002_rls.sql).
alter table _auth_users_count enable row level security;
revoke all on table _auth_users_count from public;
do $$
declare
    r text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        continue when not exists (select 1 from pg_roles where rolname = r);
        execute format('revoke all on table _auth_users_count from %I', r);
    end loop;
end
$$;
