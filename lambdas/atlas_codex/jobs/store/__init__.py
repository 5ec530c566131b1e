"""Where the job records live: the job table (DynamoDB, or memory for the fast tier), the
result store for results too large for a record, and the sharded index readers."""
