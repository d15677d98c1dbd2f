from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from chat import api
from multillm import health, observability

urlpatterns = [
    # Browsers ask for /favicon.ico on pages without an icon link (admin, JSON); no 404 in their console.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
        name="favicon",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/models", api.models_list, name="api_models"),
    path("api/v1/chat/completions", api.chat_completions, name="api_chat_completions"),
    path("api/v1/embeddings", api.embeddings, name="api_embeddings"),
    path("api/v1/sources", api.sources_list, name="api_sources"),
    path("api/v1/openapi.json", api.openapi, name="api_openapi"),
    path("api/v1/docs", api.docs, name="api_docs"),
    path("", include("chat.urls")),
]
