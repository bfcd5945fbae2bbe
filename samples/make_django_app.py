#!/usr/bin/env python3
"""Build a Django app's SQLite database the way Django itself makes it: a project with
contenttypes, auth, admin and sessions and a small `blog` app (a CheckConstraint, a conditional
UniqueConstraint, a functional unique constraint on Lower(), a descending index, a JSONField, a
UUIDField, a DecimalField, a many-to-many), migrated with `migrate` and filled through the ORM.

Usage::

    python samples/make_django_app.py OUT.db [--force]

Needs Django (5.2; in etl's test extras). Every value is fixed: the same call gives the same rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from sample_cli import build_main  # samples/, beside this script

SETTINGS = """
import os
SECRET_KEY = "not a secret: a sample project"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.admin",
    "django.contrib.sessions", "django.contrib.messages", "blog",
]
# The admin's tables without its web pages: no templates or middleware needed.
SILENCED_SYSTEM_CHECKS = ["admin.E403", "admin.E408", "admin.E409", "admin.E410"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SAMPLE_DB"]}}
"""

MODELS = """
import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Blog(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    settings = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="blog_name_ci_unique")]


class Tag(models.Model):
    label = models.CharField(max_length=40, unique=True)


class Post(models.Model):
    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    rating = models.DecimalField(max_digits=3, decimal_places=1, null=True)
    views = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=False)
    created = models.DateTimeField()
    tags = models.ManyToManyField(Tag, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created"], name="post_newest_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(rating__gte=0) & models.Q(rating__lte=5), name="post_rating_0_5"),
            models.UniqueConstraint(fields=["blog", "title"], condition=models.Q(published=True), name="post_published_title"),
        ]
"""

FILL = """
import datetime
import decimal
import uuid

import django

django.setup()

from django.contrib.admin.models import LogEntry, ADDITION  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from blog.models import Blog, Post, Tag  # noqa: E402

UTC = datetime.UTC
when = datetime.datetime(2025, 8, 7, 10, 0, tzinfo=UTC)
editors = Group.objects.create(name="editors")
editors.permissions.set(Permission.objects.filter(codename__startswith="change_"))
ana = User.objects.create(username="ana", email="ana@example.com", password="!", first_name="Ana", date_joined=when)
ana.groups.add(editors)
bo = User.objects.create(username="bo", email="bo@example.com", password="!", is_staff=True, date_joined=when)
news = Blog.objects.create(name="News", slug="news", settings={"theme": "dark", "langs": ["en", "pt"]})
notes = Blog.objects.create(name="Notes", slug="notes")
tags = [Tag.objects.create(label=label) for label in ("django", "sqlite", "postgres")]
for i in range(12):
    post = Post.objects.create(
        blog=news if i % 2 else notes,
        author=ana if i % 3 else None,
        public_id=uuid.UUID(int=i + 1),
        title=f"Post {i}",
        body="Olá — ünïcode" if i == 3 else "",
        rating=decimal.Decimal(i % 6) if i % 4 else None,
        views=i * 10,
        published=i % 2 == 0,
        created=when + datetime.timedelta(days=i),
    )
    post.tags.set(tags[: i % 4])
LogEntry.objects.create(
    user=bo, content_type=ContentType.objects.get_for_model(Post), object_id="1",
    object_repr="Post 0", action_flag=ADDITION, change_message="[]", action_time=when,
)
"""


def build_django_app(path: str | Path) -> None:
    """Write the database to `path` (which must not exist)."""
    with tempfile.TemporaryDirectory() as site_dir:
        site = Path(site_dir)
        (site / "settings.py").write_text(textwrap.dedent(SETTINGS))
        (site / "blog").mkdir()
        (site / "blog" / "__init__.py").write_text("")
        (site / "blog" / "models.py").write_text(textwrap.dedent(MODELS))
        (site / "fill.py").write_text(textwrap.dedent(FILL))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(site),
            "SAMPLE_DB": str(Path(path).resolve()),
        }
        for command in (["-m", "django", "makemigrations", "blog"], ["-m", "django", "migrate"], ["fill.py"]):
            done = subprocess.run(
                [sys.executable, *command], cwd=site, env=env, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def main() -> int:
    return build_main(build_django_app, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
