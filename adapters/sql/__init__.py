"""The journal and state store on SQLAlchemy Core: PostgreSQL (psycopg 3) or embedded SQLite."""
