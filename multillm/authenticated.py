"""The request type of views that only logged-in users reach.

`LoginRequiredMiddleware` sends everyone else to the login page (views open to all are marked
`login_not_required`), and the API's views run after their key was checked, so in these
views `request.user` is a real `User`: this type says so to the type checker.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    user: User
