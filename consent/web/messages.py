"""Everything the consent page says, in 繁體中文, 简体中文 and English, and how it formats
dates (Babel: the locale's long date). Keys missing in a language fall back to English."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

LANGUAGES = ("zh-Hant", "zh-Hans", "en")
LANGUAGE_NAMES = {"zh-Hant": "繁體中文", "zh-Hans": "简体中文", "en": "English"}
LOCALES = {"zh-Hant": "zh_Hant_HK", "zh-Hans": "zh_Hans_CN", "en": "en_HK"}
TIMEZONE = "Asia/Hong_Kong"  # Hong Kong, Macao and the mainland Bay Area cities share UTC+8

# key: (English, 繁體中文, 简体中文)
CATALOG: dict[str, tuple[str, str, str]] = {
    "title": ("Your consents", "你的同意書", "你的同意书"),
    "service": ("BayLink consent page", "BayLink 同意書頁面", "BayLink 同意书页面"),
    "skip": ("Skip to content", "跳至內容", "跳至内容"),
    "language": ("Language", "語言", "语言"),
    "signin_title": ("Sign in", "登入", "登录"),
    "signin_intro": ("Enter the identity document number your hospital has on record. We will send a one-time code "
                     "to the phone or email on record.",
                     "請輸入醫院記錄中的身份證明文件號碼。我們會把一次性驗證碼發送到記錄中的電話或電郵。",
                     "请输入医院记录中的身份证件号码。我们会把一次性验证码发送到记录中的电话或电子邮箱。"),
    "document_type": ("Identity document", "身份證明文件", "身份证件"),
    "document_number": ("Document number", "文件號碼", "证件号码"),
    "doc_hkid": ("Hong Kong Identity Card", "香港身份證", "香港身份证"),
    "doc_mo": ("Macao Resident Identity Card", "澳門居民身份證", "澳门居民身份证"),
    "doc_cn": ("Mainland Resident Identity Card", "內地居民身份證", "内地居民身份证"),
    "doc_rp": ("Residence Permit for HK/Macao/Taiwan Residents", "港澳台居民居住證", "港澳台居民居住证"),
    "doc_tp": ("Mainland Travel Permit for HK and Macao Residents", "港澳居民來往內地通行證", "港澳居民来往内地通行证"),
    "doc_ee": ("Exit-Entry Permit for Travelling to and from HK and Macao", "往來港澳通行證", "往来港澳通行证"),
    "send_code": ("Send me a code", "發送驗證碼", "发送验证码"),
    "code_sent": ("If this number is on record, a code has been sent to the phone or email on record. "
                  "It is valid for 10 minutes.",
                  "如此號碼有記錄，驗證碼已發送到記錄中的電話或電郵，10 分鐘內有效。",
                  "如此号码有记录，验证码已发送到记录中的电话或电子邮箱，10 分钟内有效。"),
    "code": ("One-time code", "一次性驗證碼", "一次性验证码"),
    "verify": ("Sign in", "登入", "登录"),
    "code_wrong": ("That code is not right or has expired. Ask for a new code if needed.",
                   "驗證碼不正確或已過期，如有需要請重新索取。", "验证码不正确或已过期，如有需要请重新获取。"),
    "too_many": ("Too many attempts. Please wait 15 minutes and try again.",
                 "嘗試次數過多，請等候 15 分鐘後再試。", "尝试次数过多，请等待 15 分钟后再试。"),
    "invalid_number": ("That document number is not valid: {detail}", "文件號碼無效：{detail}", "证件号码无效：{detail}"),
    "signed_out": ("You have signed out.", "你已登出。", "你已退出登录。"),
    "session_expired": ("Please sign in again.", "請重新登入。", "请重新登录。"),
    "sign_out": ("Sign out", "登出", "退出登录"),
    "choose_person": ("Whose consents do you manage?", "你要管理誰的同意書？", "你要管理谁的同意书？"),
    "acting_for": ("You are acting for {name} as {basis}.", "你正以{basis}身份代表 {name}。", "你正以{basis}身份代表 {name}。"),
    "basis_self": ("yourself", "本人", "本人"),
    "basis_parent": ("parent", "家長", "家长"),
    "basis_guardian": ("guardian", "監護人", "监护人"),
    "basis_attorney": ("attorney for health decisions", "醫療決定受權人", "医疗决定受托人"),
    "refused_minor": ("People under {age} cannot give consent themselves here; a parent or guardian decides for them.",
                      "未滿 {age} 歲人士不能在此自行給予同意，須由家長或監護人代為決定。",
                      "未满 {age} 岁人士不能在此自行给予同意，须由家长或监护人代为决定。"),
    "refused_deceased": ("These records belong to a person recorded as deceased.", "此紀錄所屬人士已登記離世。",
                         "此记录所属人士已登记离世。"),
    "refused_not_current": ("Your authority to act for this person is not current.", "你代表此人士的授權現時無效。",
                            "你代表此人士的授权目前无效。"),
    "refused_child_of_age": ("This person is now of age and decides for themselves.", "此人士已成年，須自行決定。",
                             "此人士已成年，须自行决定。"),
    "refused_no_authority": ("You are not recorded as someone who may decide for this person.",
                             "記錄中你並非可代此人士作決定的人。", "记录中你并非可代此人士作决定的人。"),
    "holdings": ("Who holds your records", "誰持有你的紀錄", "谁持有你的记录"),
    "holdings_none": ("No institution holds records about you yet.", "暫時沒有機構持有你的紀錄。", "暂时没有机构持有你的记录。"),
    "records_count": ("{count} records", "{count} 項紀錄", "{count} 项记录"),
    "active_consents": ("Your active consents", "生效中的同意", "生效中的同意"),
    "no_consents": ("You have not given any consent. Without one, no other institution can see your records.",
                    "你未有給予任何同意。沒有同意，其他機構不能查閱你的紀錄。",
                    "你未给予任何同意。没有同意，其他机构不能查阅你的记录。"),
    "consent_sentence": ("{recipient} may see your {categories} for {purposes} until {end}.",
                         "{recipient} 可在 {end} 前為{purposes}查閱你的{categories}。",
                         "{recipient} 可在 {end} 前为{purposes}查阅你的{categories}。"),
    "cross_border_yes": ("Includes release across the boundary.", "包括跨境提供。", "包括跨境提供。"),
    "sensitive_included": ("Includes sensitive records: {labels}.", "包括敏感紀錄：{labels}。", "包括敏感记录：{labels}。"),
    "withdraw": ("Withdraw", "撤回", "撤回"),
    "withdrawn_ok": ("Consent withdrawn. It stops access from now on.", "已撤回同意，即時停止查閱。",
                     "已撤回同意，即时停止查阅。"),
    "granted_ok": ("Consent given.", "已給予同意。", "已给予同意。"),
    "approved_ok": ("Request approved.", "已批准請求。", "已批准请求。"),
    "declined_ok": ("Request declined.", "已拒絕請求。", "已拒绝请求。"),
    "requests": ("Requests waiting for your answer", "等待你回覆的請求", "等待你回复的请求"),
    "no_requests": ("No requests are waiting.", "沒有待回覆的請求。", "没有待回复的请求。"),
    "request_sentence": ("{requester} asks: {sentence}", "{requester} 請求：{sentence}", "{requester} 请求：{sentence}"),
    "approve": ("Approve", "批准", "批准"),
    "decline": ("Decline", "拒絕", "拒绝"),
    "grant_title": ("Give a new consent", "給予新的同意", "给予新的同意"),
    "recipient": ("Who may see your records", "誰可查閱你的紀錄", "谁可查阅你的记录"),
    "choose": ("Choose…", "請選擇…", "请选择…"),
    "recipient_classes_group": ("Groups of institutions", "機構類別", "机构类别"),
    "class_designated_ehcv": ("All Elderly Health Care Voucher service points", "所有長者醫療券服務點", "所有长者医疗券服务点"),
    "class_designated_mmdc": ("All Medicines and Medical Devices Connect institutions", "所有港澳藥械通指定機構",
                              "所有港澳药械通指定机构"),
    "class_sector_HA": ("All Hospital Authority hospitals (Hong Kong)", "所有醫院管理局醫院（香港）",
                        "所有医院管理局医院（香港）"),
    "class_jurisdiction_HK": ("All institutions in Hong Kong", "所有香港機構", "所有香港机构"),
    "class_jurisdiction_MO": ("All institutions in Macao", "所有澳門機構", "所有澳门机构"),
    "class_jurisdiction_CN": ("All institutions in the mainland Bay Area cities", "所有內地大灣區城市機構",
                              "所有内地大湾区城市机构"),
    "categories": ("Which records", "哪些紀錄", "哪些记录"),
    "purposes": ("For what", "用途", "用途"),
    "end": ("Until (date)", "有效至（日期）", "有效至（日期）"),
    "cross_border": ("Allow release across the boundary (Hong Kong, Macao, mainland)",
                     "容許跨境提供（香港、澳門、內地）", "允许跨境提供（香港、澳门、内地）"),
    "cross_border_hint": ("Records held in one place go to an institution in another only if you tick this "
                          "(PIPL Art. 39; Greater Bay Area Standard Contract).",
                          "只有剔選此項，一地持有的紀錄才會提供給另一地的機構（《個人信息保護法》第三十九條；大灣區標準合同）。",
                          "只有勾选此项，一地持有的记录才会提供给另一地的机构（《个人信息保护法》第三十九条；大湾区标准合同）。"),
    "sensitive": ("Sensitive records to include (only those you tick)", "要包括的敏感紀錄（只限你剔選的）",
                  "要包括的敏感记录（仅限你勾选的）"),
    "give": ("Give consent", "給予同意", "给予同意"),
    "form_invalid": ("Please check the form.", "請檢查表格。", "请检查表格。"),
    "err_recipient": ("Choose who may see your records.", "請選擇誰可查閱你的紀錄。", "请选择谁可查阅你的记录。"),
    "err_categories": ("Tick at least one kind of record.", "請至少剔選一類紀錄。", "请至少勾选一类记录。"),
    "err_purposes": ("Tick at least one purpose.", "請至少剔選一個用途。", "请至少勾选一个用途。"),
    "err_end": ("The end date must be today or later.", "有效日期須為今天或之後。", "有效日期须为今天或之后。"),
    "err_sensitive": ("Unknown sensitive category.", "不明的敏感類別。", "未知的敏感类别。"),
    "cat_consents": ("consents", "同意書", "同意书"),
    "cat_other": ("other records", "其他紀錄", "其他记录"),
    "cat_financial": ("billing and cover", "收費及保障", "费用及保障"),
    "access_log": ("Who has seen your records", "誰曾查閱你的紀錄", "谁曾查阅你的记录"),
    "access_none": ("Nobody has accessed your records yet.", "暫時沒有人查閱你的紀錄。", "暂时没有人查阅你的记录。"),
    "col_when": ("When", "時間", "时间"),
    "col_who": ("Who", "誰", "谁"),
    "col_what": ("What", "甚麼", "什么"),
    "col_why": ("Why", "原因", "原因"),
    "emergency": ("Emergency access", "緊急查閱", "紧急查阅"),
    "refused": ("Refused: no consent", "已拒絕：未獲同意", "已拒绝：未获同意"),
    "you": ("You (consent page)", "你（同意書頁面）", "你（同意书页面）"),
    "action_R": ("read", "查閱", "查阅"),
    "action_E": ("searched", "搜尋", "搜索"),
    "action_C": ("added", "新增", "新增"),
    "action_U": ("changed", "修改", "修改"),
    "action_D": ("deleted", "刪除", "删除"),
    "cat_demographics": ("personal details", "個人資料", "个人信息"),
    "cat_allergies": ("allergies", "過敏", "过敏"),
    "cat_medications": ("medicines", "藥物", "药物"),
    "cat_problems": ("diagnoses", "診斷", "诊断"),
    "cat_results": ("lab and test results", "化驗及檢查結果", "化验及检查结果"),
    "cat_imaging": ("imaging", "影像", "影像"),
    "cat_documents": ("documents", "文件", "文件"),
    "cat_encounters": ("visits and admissions", "就診及住院", "就诊及住院"),
    "cat_procedures": ("procedures", "手術及程序", "手术及操作"),
    "cat_immunizations": ("vaccinations", "疫苗接種", "疫苗接种"),
    "cat_care-plans": ("care plans", "護理計劃", "护理计划"),
    "cat_referrals": ("referrals", "轉介", "转诊"),
    "purpose_TREAT": ("treatment", "治療", "治疗"),
    "purpose_ETREAT": ("emergency treatment", "緊急治療", "紧急治疗"),
    "purpose_HPAYMT": ("payment (e.g. vouchers)", "付款（例如醫療券）", "付款（例如医疗券）"),
    "purpose_HRESCH": ("research", "研究", "研究"),
    "purpose_PATRQT": ("your request", "你的要求", "你的要求"),
    "purpose_HOPERAT": ("operations", "營運", "运营"),
    "sens_PSY": ("psychiatric", "精神科", "精神科"),
    "sens_MH": ("mental health", "精神健康", "心理健康"),
    "sens_SEX": ("sexual and reproductive health", "性及生殖健康", "性与生殖健康"),
    "sens_HIV": ("HIV", "愛滋病病毒", "艾滋病病毒"),
    "sens_GDIS": ("genetics", "遺傳", "遗传"),
    "sens_SUD": ("substance use", "物質使用", "物质使用"),
    "sens_ETH": ("substance abuse", "物質濫用", "物质滥用"),
    "and": (" and ", "及", "及"),
    "list_sep": (", ", "、", "、"),
    "dev_title": ("Messages sent (development only)", "已發送訊息（僅限開發環境）", "已发送消息（仅限开发环境）"),
    "csrf": ("The form expired. Please try again.", "表格已過期，請再試一次。", "表单已过期，请再试一次。"),
    "not_found": ("Not found.", "找不到。", "找不到。"),
    "conflict": ("That has already been done.", "此操作已完成。", "此操作已完成。"),
    "institutions_group": ("Institutions", "機構", "机构"),
    "voucher_title": ("Elderly Health Care Voucher", "長者醫療券", "长者医疗券"),
    "voucher_balance": ("Balance: {amount}", "餘額：{amount}", "余额：{amount}"),
    "voucher_recent": ("Recent claims", "最近使用紀錄", "最近使用记录"),
    "voucher_none": ("No claims yet.", "暫時沒有使用紀錄。", "暂时没有使用记录。"),
    "voucher_approved": ("approved", "已批核", "已批核"),
    "voucher_partial": ("partly approved", "部分批核", "部分批核"),
    "voucher_refused": ("refused", "不獲批核", "未获批核"),
    "voucher_voided": ("cancelled", "已取消", "已取消"),
    "voucher_refunded": ("refunded", "已退回", "已退回"),
    "col_service": ("Service", "服務", "服务"),
    "col_amount": ("Amount", "金額", "金额"),
    "balance": ("Elderly Health Care Voucher balance", "長者醫療券餘額", "长者医疗券余额"),
}


def translate(language: str, key: str, **values: Any) -> str:
    entry = CATALOG.get(key)
    if entry is None:
        return key
    index = {"en": 0, "zh-Hant": 1, "zh-Hans": 2}.get(language, 0)
    chosen = entry[index] or entry[0]
    return chosen.format(**values) if values else chosen


def join(language: str, items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return translate(language, "list_sep").join(items[:-1]) + translate(language, "and") + items[-1]


def long_date(language: str, value: date | str) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return format_date(value, format="long", locale=LOCALES.get(language, "en_HK"))


def date_time(language: str, value: datetime | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_datetime(value, format="medium", tzinfo=TIMEZONE, locale=LOCALES.get(language, "en_HK"))


def money(language: str, amount: Any, currency: str = "HKD") -> str:
    return format_currency(amount, currency, locale=LOCALES.get(language, "en_HK"))


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """A supported language from an explicit choice, else the browser's Accept-Language
    (zh-HK/zh-TW/zh-MO → 繁體, zh-CN/zh-SG/zh → 简体), else Traditional Chinese."""
    if requested in LANGUAGES:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag in ("zh-hk", "zh-tw", "zh-mo", "zh-hant") or tag.startswith("zh-hant"):
            return "zh-Hant"
        if tag.startswith("zh"):
            return "zh-Hans"
        if tag.startswith("en"):
            return "en"
    return "zh-Hant"
