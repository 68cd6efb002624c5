"""The product's URLs plus the bench's trivial view. Only bench/trivial/settings.py names this URLconf."""

from django.urls import path

from bench.trivial import views
from preventicons.urls import urlpatterns as product_urlpatterns

urlpatterns = [*product_urlpatterns, path("bench/insert/", views.insert_one, name="bench-insert")]
