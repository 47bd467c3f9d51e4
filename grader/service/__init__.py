"""The grading service (`grader serve`): students upload, the hidden tests answer, nothing acknowledged is lost.

One process: a Flask app served by waitress (`server.py`), a scheduler thread that hands queued jobs to the batch's
sandboxed worker pool (`queue.py`), users and their tokens (`users.py`), all kept in one database (`db.py`:
SQLite in WAL mode in the data folder, or PostgreSQL through the same SQLAlchemy code). The database is the
source of truth for every job; uploads are stored in the data folder, under names the server chooses.
"""
