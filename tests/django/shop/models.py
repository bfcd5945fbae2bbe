"""Models using what real Django apps use; shop/migrations is written by `makemigrations` in the test."""

import uuid

from django.conf import settings
from django.db import models


class Category(models.Model):
    id = models.AutoField(primary_key=True)  # an `integer` id on PostgreSQL, as auth's models have
    name = models.CharField(max_length=100)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["parent", "name"], name="category_name_per_parent")]


class Tag(models.Model):
    label = models.SlugField(max_length=50, unique=True)


class Product(models.Model):
    sku = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict)
    released = models.DateField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    tags = models.ManyToManyField(Tag, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)

    class Meta:
        indexes = [
            models.Index(fields=["-created_at"], name="product_newest_idx"),
            models.Index(fields=["name"], condition=models.Q(active=True), name="product_active_name_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["sku", "name"], condition=models.Q(active=True), name="product_active_sku"
            )
        ]


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    stars = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True)

    class Meta:
        unique_together = [("product", "author")]
        constraints = [
            models.CheckConstraint(condition=models.Q(stars__lte=5), name="review_stars_at_most_5")
        ]
