// /docs: Swagger UI from web/vendor/swagger-ui (installed by scripts/setup.sh), started here
// rather than in an inline script, which the Content-Security-Policy forbids.
window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });
