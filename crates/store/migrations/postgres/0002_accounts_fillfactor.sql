-- Every batch rewrites the balance columns of the accounts it touches. Room
-- left free on each page lets PostgreSQL update those rows in place (HOT
-- updates), without a new entry in every index of the table per update.
ALTER TABLE accounts SET (fillfactor = 50);
ALTER TABLE subject_balances SET (fillfactor = 50);
