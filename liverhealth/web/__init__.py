"""``liverhealth web``: the browser face on the workflow service (FastAPI + uvicorn, NiiVue)."""
