"""A small Django project for tests/test_django_in_sync.py: the database is SQLite (app.sqlite3
beside this file) unless $ETL_DJANGO_DATABASE_URL names a PostgreSQL database."""

import os
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

SECRET_KEY = "not a secret: a test project"
USE_TZ = True
TIME_ZONE = "Europe/Paris"  # not UTC, so a datetime read in the wrong zone shows
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if url := os.environ.get("ETL_DJANGO_DATABASE_URL"):
    conninfo = conninfo_to_dict(url)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": conninfo["dbname"],
            "HOST": conninfo.get("host", ""),
            "PORT": conninfo.get("port", ""),
            "USER": conninfo.get("user", ""),
            "PASSWORD": conninfo.get("password", ""),
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": Path(__file__).parent / "app.sqlite3"}
    }
