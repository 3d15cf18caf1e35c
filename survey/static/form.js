// Progressive enhancement of the questionnaire form. Everything works without this script:
// it shows and hides questions on the page as answers change (the server applies the same
// display_if rules when the page is sent) and makes exclusive choices ("none of these") exclusive.
(function () {
  "use strict";
  var form = document.getElementById("survey-form");
  if (!form) { return; }
  var carried = {};
  try { carried = JSON.parse(form.elements.carried.value || "{}"); } catch (e) { carried = {}; }

  function answers() {
    var result = Object.assign({}, carried);
    form.querySelectorAll("fieldset.question").forEach(function (fieldset) {
      var code = fieldset.dataset.code;
      if (fieldset.hidden) { delete result[code]; return; }
      var checked = fieldset.querySelectorAll("input[name='q-" + code + "']:checked");
      if (checked.length === 1 && checked[0].type === "radio") { result[code] = checked[0].value; }
      else if (checked.length > 0) { result[code] = Array.prototype.map.call(checked, function (i) { return i.value; }); }
      else { delete result[code]; }
    });
    return result;
  }

  function holds(condition, given) {
    if (condition.all) { return condition.all.every(function (c) { return holds(c, given); }); }
    if (condition.any) { return condition.any.some(function (c) { return holds(c, given); }); }
    var value = given[condition.question];
    if (value === undefined || value === null) { return false; }
    var selected = Array.isArray(value) ? value : [value];
    var hit = selected.some(function (v) { return condition.values.indexOf(v) !== -1; });
    return condition.operator === "in" ? hit : !hit;
  }

  function refresh() {
    var shown = [];
    form.querySelectorAll("fieldset.question").forEach(function (fieldset) {
      if (fieldset.dataset.displayIf) {
        fieldset.hidden = !holds(JSON.parse(fieldset.dataset.displayIf), answers());
      }
      if (!fieldset.hidden) { shown.push(fieldset.dataset.code); }
    });
    form.elements.shown.value = shown.sort().join(",");
  }

  form.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type === "checkbox" && input.checked) {
      var group = form.querySelectorAll("input[name='" + input.name + "']");
      group.forEach(function (other) {
        if (other !== input && (input.dataset.exclusive || other.dataset.exclusive)) { other.checked = false; }
      });
    }
    refresh();
  });
  refresh();
})();
