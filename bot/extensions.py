"""Flask extensions, created unbound here and bound to an app in `create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def tune_sqlite(app) -> None:
    """WAL and a busy timeout, so several gunicorn workers can share the demo's SQLite file.

    A writer no longer blocks readers, and a locked database waits up to 2 s instead of
    failing at once (a longer outage is handled by the journal's disk spool).
    """
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=2000")
        cursor.close()
