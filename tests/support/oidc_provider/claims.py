"""The claims the gateway maps: the user's name, e-mail and Django groups (as `groups`)."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class GroupClaims(OAuth2Validator):
    # `groups` is no standard claim with a scope of its own: give it with `openid`.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "openid"}

    def get_additional_claims(self, request):
        user = request.user
        return {"preferred_username": user.username, "email": user.email,
                "groups": sorted(g.name for g in user.groups.all())}
