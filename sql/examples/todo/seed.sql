-- Example data for the demo user `demo-user` (and someone else, whose rows the demo never sees).
INSERT INTO announcements (id, message) VALUES
    ('welcome', 'Welcome to ferry: this row came from Postgres through a sync bucket.');
INSERT INTO lists (id, owner_id, name) VALUES
    ('groceries', 'demo-user', 'Groceries'),
    ('work', 'demo-user', 'Work'),
    ('secret', 'someone-else', 'Not yours');
INSERT INTO todos (list_id, owner_id, description, completed)
SELECT 'groceries', 'demo-user', item, false
FROM unnest(ARRAY['Milk', 'Bread', 'Coffee']) AS item;
INSERT INTO todos (list_id, owner_id, description)
SELECT 'work', 'demo-user', 'Task #' || g FROM generate_series(1, 2000) g;
INSERT INTO todos (list_id, owner_id, description) VALUES ('secret', 'someone-else', 'Hidden');
