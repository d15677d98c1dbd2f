from django.apps import AppConfig


class MultiLLMConfig(AppConfig):
    name = "multillm"
    verbose_name = "Multi-LLM Chat"
