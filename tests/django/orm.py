"""What tests/test_django_in_sync.py asks of Django's ORM, run in the project's directory:

python orm.py fill     write rows through the ORM (on SQLite, before the move)
python orm.py read     print every row of every model as JSON, values in a canonical form
python orm.py change   create, update and delete a row in every model; print the new ids as JSON
"""

import datetime
import decimal
import json
import sys
import uuid

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402
from django.utils import timezone  # noqa: E402
from shop.models import Category, Product, Review, Tag  # noqa: E402

UTC = datetime.UTC


def fill() -> None:
    editors = Group.objects.create(name="editors")
    editors.permissions.set(Permission.objects.filter(codename__startswith="change_"))
    ana = User.objects.create_user("ana", "ana@example.com", "pw", first_name="Ana", last_name="Ñúñez")
    ana.groups.add(editors)
    ana.user_permissions.add(Permission.objects.get(codename="add_product"))
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    User.objects.filter(pk=root.pk).update(last_login=datetime.datetime(2025, 10, 26, 0, 30, tzinfo=UTC))
    books = Category.objects.create(name="Books")
    novels = Category.objects.create(name="Novels", parent=books)
    new, sale = Tag.objects.create(label="new"), Tag.objects.create(label="sale")
    Tag.objects.create(label="gone").delete()  # SQLite's AUTOINCREMENT counter is now past the largest id
    dune = Product.objects.create(
        name="Dune",
        price=decimal.Decimal("12.34"),
        stock=3,
        attributes={
            "pages": 412,
            "tags": ["sf"],
            "none": None,
            "ratio": 2.5,
            "nested": {"a": [1, {"b": True}]},
        },
        released=datetime.date(1965, 8, 1),
        category=novels,
        owner=ana,
    )
    dune.tags.set([new, sale])
    Product.objects.create(
        name="Émile ☃",
        price=decimal.Decimal("99999999.99"),
        active=False,
        attributes=[1, "ü"],
        category=books,
    )
    Product.objects.create(
        name="Stamp", price=decimal.Decimal("5.00"), stock=2147483647, attributes={}, category=books
    )
    Product.objects.create(name="Cent", price=decimal.Decimal("0.01"), attributes="a string", category=books)
    # Microseconds, and an instant in the hour Paris repeats when summer time ends.
    Product.objects.filter(name="Dune").update(
        created_at=datetime.datetime(2025, 10, 26, 0, 30, 0, 123456, tzinfo=UTC)
    )
    Review.objects.create(product=dune, author=ana, stars=5, body="A classic.\n")
    Review.objects.create(product=dune, author=root, stars=0)


def canonical(value):
    """A value as JSON, its Python type named, so that equal text of another type does not pass."""
    if isinstance(value, datetime.datetime):
        assert value.tzinfo is not None, f"a naive datetime: {value!r}"
        return ["datetime", value.astimezone(UTC).isoformat()]
    if isinstance(value, datetime.date | decimal.Decimal | uuid.UUID):
        return [type(value).__name__, str(value)]
    return [type(value).__name__, value]


def all_models():
    return [*apps.get_models(include_auto_created=True), MigrationRecorder.Migration]


def read() -> None:
    rows = {}
    for model in all_models():
        fields = model._meta.concrete_fields
        rows[model._meta.label] = [
            {f.attname: canonical(getattr(obj, f.attname)) for f in fields}
            for obj in model.objects.order_by("pk")
        ]
    json.dump(rows, sys.stdout, indent=1, sort_keys=True)


def change() -> None:
    """A row created, updated and deleted in every model; prints {model: the new row's id}."""
    ct = ContentType.objects.create(app_label="shop", model="extra")
    permission = Permission.objects.create(name="Can extra", content_type=ct, codename="extra")
    group = Group.objects.create(name="buyers")
    user = User.objects.create_user("new", "new@example.com", "pw")
    category = Category.objects.create(name="Games")
    tag = Tag.objects.create(label="fresh")
    product = Product.objects.create(
        name="Go", price=decimal.Decimal("7.50"), attributes={"k": 1}, category=category
    )
    created = [
        ct,
        permission,
        group,
        user,
        category,
        tag,
        product,
        Review.objects.create(product=product, author=user, stars=3),
        group.permissions.through.objects.create(group=group, permission=permission),
        user.groups.through.objects.create(user=user, group=group),
        user.user_permissions.through.objects.create(user=user, permission=permission),
        product.tags.through.objects.create(product=product, tag=tag),
        MigrationRecorder.Migration.objects.create(app="shop", name="9999_extra"),
    ]
    assert {type(obj) for obj in created} == set(all_models()), "a model is not exercised"
    ids = {type(obj)._meta.label: obj.pk for obj in created}

    product.price, product.attributes, product.stock = decimal.Decimal("8.25"), {"k": [2]}, 4
    product.save()
    product.refresh_from_db()
    assert (product.price, product.attributes, product.stock) == (decimal.Decimal("8.25"), {"k": [2]}, 4)
    assert Product.objects.filter(attributes__k__0=2).get() == product  # a JSON path query
    assert Product.objects.get(sku=product.sku) == product  # a uuid lookup
    # __date compares the date in TIME_ZONE (Paris), not the UTC one the value holds.
    local_day = timezone.localtime(product.created_at).date()
    assert Product.objects.filter(created_at__date=local_day).exists()
    user.first_name = "Nu"
    user.save(update_fields=["first_name"])
    Category.objects.filter(pk=category.pk).update(name="Board games")
    for obj in reversed(created):
        obj.delete()
    assert not User.objects.filter(username="new").exists()
    json.dump(ids, sys.stdout, sort_keys=True)


{"fill": fill, "read": read, "change": change}[sys.argv[1]]()
